#pragma once
// The configuration of a decoder-only causal LM of the Qwen2 / Qwen3 layouts (config.json as transformers
// saves Qwen2ForCausalLM / Qwen3ForCausalLM), plus its rotary position settings and stop tokens.
//
// Family facts: RMSNorm (rms_norm_eps), rotary positions (rope_theta and rope_scaling / rope_parameters of
// type default, linear, llama3 or yarn), grouped-query attention (num_key_value_heads, head_dim),
// SwiGLU MLP (hidden_act silu), tied or untied lm_head. Qwen3 adds per-head RMSNorm of queries and keys and
// has no q/k/v biases (attention_bias false); Qwen2 has q/k/v biases and no q/k norm. Sliding-window
// attention is rejected (kUnsupported) rather than silently computed as full attention.
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace fathom::models::decoder {

// Rotary settings as transformers' ROPE_INIT_FUNCTIONS read them.
struct RopeConfig {
  std::string type = "default";  // default | linear | llama3 | yarn
  double theta = 10000.0;
  double factor = 1.0;                     // linear, llama3, yarn
  double low_freq_factor = 1.0;            // llama3
  double high_freq_factor = 4.0;           // llama3
  int original_max_position_embeddings = 0;  // llama3, yarn (0: max_position_embeddings)
  double beta_fast = 32.0, beta_slow = 1.0;  // yarn
  double attention_factor = 0.0;           // yarn: 0 = 0.1 ln(factor) + 1
  double mscale = 0.0, mscale_all_dim = 0.0;  // yarn variants
  bool truncate = true;                    // yarn
};

struct DecoderConfig {
  std::string architecture;  // config.json architectures[0] (or model_type)
  std::string model_type;    // "qwen2" | "qwen3"
  int hidden_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;
  int head_dim = 0;
  int intermediate_size = 0;
  int vocab_size = 0;
  int max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v projections carry biases
  bool qk_norm = false;         // per-head RMSNorm of q and k (Qwen3)
  RopeConfig rope;
  std::vector<int> eos_token_ids;  // config.json eos_token_id (int or list)
  int pad_token_id = -1;
};

// Parses a config.json object of model_type qwen2 / qwen3 (architectures Qwen2ForCausalLM, Qwen3ForCausalLM,
// Qwen2Model, Qwen3Model). Errors (kLoadFailed, kUnsupported) name `file` and the key.
Result<DecoderConfig> parse_decoder_config(const nlohmann::json& config, const std::filesystem::path& file);

// Reads generation_config.json in `dir` when present: its eos_token_id (int or list) replaces
// config.eos_token_ids. A missing file is not an error.
Status read_generation_config(const std::filesystem::path& dir, DecoderConfig& config);

// The rotary inverse frequencies (head_dim / 2 floats) and the factor applied to cos / sin, as
// transformers computes them for `rope`, head_dim and max_position_embeddings.
struct RopeTables {
  std::vector<float> inv_freq;
  float attention_scaling = 1.0f;
};
Result<RopeTables> rope_tables(const RopeConfig& rope, int head_dim, int max_position_embeddings);

}  // namespace fathom::models::decoder
