#pragma once
// The weights of a Qwen2 / Qwen3 decoder on a device, in the compute dtype (f16/bf16 checkpoints become f32
// on CPU). Projections are fused at load: q | k | v into one [(q_heads + 2 kv_heads) * head_dim, hidden]
// matrix (and its bias for Qwen2), gate | up into one [2 * intermediate, hidden] matrix.
//
// Tensor names as transformers saves *ForCausalLM: PREFIX + "model.embed_tokens.weight",
// "model.layers.N.{input_layernorm,post_attention_layernorm}.weight", "model.layers.N.self_attn.{q,k,v,o}_proj.weight"
// (+ q/k/v ".bias" for Qwen2, "self_attn.{q,k}_norm.weight" for Qwen3), "model.layers.N.mlp.{gate,up,down}_proj.weight",
// "model.norm.weight", "lm_head.weight" (absent when tied). A checkpoint of the bare *Model (no "model."
// level, no lm_head) loads too; its lm_head is then empty and only hidden states can be computed.
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "formats/safetensors.h"
#include "models/decoder/config.h"
#include "models/weights.h"

namespace fathom::models::decoder {

struct DecoderLayerWeights {
  TensorView input_norm;  // [hidden]
  TensorView qkv;         // [(q_heads + 2 kv_heads) * head_dim, hidden]
  TensorView qkv_bias;    // [(q_heads + 2 kv_heads) * head_dim] or empty
  TensorView q_norm;      // [head_dim] or empty
  TensorView k_norm;      // [head_dim] or empty
  TensorView o;           // [hidden, q_heads * head_dim]
  TensorView post_norm;   // [hidden]
  TensorView gate_up;     // [2 * intermediate, hidden]
  TensorView down;        // [hidden, intermediate]
};

struct DecoderWeights {
  DType dtype = DType::kF32;
  TensorView embed;       // [vocab, hidden]
  TensorView final_norm;  // [hidden]
  TensorView lm_head;     // [vocab, hidden] (the embedding table when tied), or empty
  std::vector<DecoderLayerWeights> layers;
  std::unique_ptr<WeightStore> store;  // owns the device memory

  std::size_t bytes() const { return store ? store->bytes() : 0; }
};

// Loads every tensor under `prefix` (e.g. "" or "llm."), checking presence and shapes against `config`.
// Errors name the tensor and the checkpoint file.
Result<std::unique_ptr<DecoderWeights>> load_decoder_weights(const formats::Checkpoint& ckpt, const std::string& prefix,
                                                             const DecoderConfig& config, Allocator& allocator,
                                                             MemoryAccount* account, DType dtype);

}  // namespace fathom::models::decoder
