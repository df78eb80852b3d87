#pragma once
// NomicBERT (NomicBertModel, config model_type "nomic_bert"; e.g. nomic-embed-text) as an embedding model on
// the shared encoder runtime (models/encoder). A hub architecture whose modeling code lives in the model
// repository (config.json `auto_map`): fathom matches it by architecture name and runs its own
// implementation, never the repository's code.
//
// Network: word (+ token-type row 0) embeddings, emb_ln, post-norm blocks norm1(x + attn(x)),
// norm2(x + mlp(x)), fused Wqkv, rotate-half rotary over the first rotary_emb_fraction of each head (base
// rotary_emb_base), SwiGLU mlp fc2(fc11(x) * silu(fc12(x))) with the width n_inner rounded up to a multiple
// of 256; biases per qkv_proj_bias / mlp_fc1_bias / mlp_fc2_bias. Tensor prefix "" or "bert.".
// Refused (kUnsupported, naming the key): prenorm, parallel blocks, causal, RMS norm, interleaved rotary,
// rotary_scaling_factor, an activation other than swiglu.
#include "models/encoder/encoder_family.h"

namespace fathom::models::nomic_bert {

// The family on the shared encoder runtime: load with encoder::load_encoder_family, position limit with
// encoder::encoder_position_limit.
encoder::EncoderFamily nomic_bert_family();

}  // namespace fathom::models::nomic_bert
