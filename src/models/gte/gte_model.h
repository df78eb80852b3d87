#pragma once
// Alibaba's GTE v1.5 / gte-multilingual encoders (NewModel, config model_type "new") as embedding models on
// the shared encoder runtime (models/encoder). A hub architecture whose modeling code lives in the model
// repository (config.json `auto_map`): fathom matches it by architecture name and runs its own
// implementation, never the repository's code.
//
// Network: word (+ token-type row 0 when type_vocab_size > 0) embeddings, LayerNorm, post-norm layers
// attn_ln(x + o_proj(attn(x))), mlp_ln(x + down_proj(up * act(gate))) with up | gate = up_gate_proj(x)
// (no bias), packed qkv_proj, rotate-half rotary over the whole head with base rope_theta, or NTK-scaled
// (`rope_scaling: {"type": "ntk", "factor": s}`: base rope_theta * s, frequencies / s^(2 / head_dim)).
// Tensor prefix "" or "new.". Refused (kUnsupported): absolute positions, other rope_scaling types,
// logn_attention_scale, layer_norm_type other than layer_norm.
#include "models/encoder/encoder_family.h"

namespace fathom::models::gte {

// The family on the shared encoder runtime: load with encoder::load_encoder_family, position limit with
// encoder::encoder_position_limit.
encoder::EncoderFamily gte_family();

}  // namespace fathom::models::gte
