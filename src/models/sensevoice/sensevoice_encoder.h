#pragma once
// The SenseVoice-Small audio encoder (SAN-M layers) of FunASR-style audio models, over fathom's ops:
//   x = features * sqrt(output_size) + sinusoidal positions (positions 1..T, depth input_size)
//   encoders0 (one layer, input_size -> output_size, no residual around its attention), encoders
//   (num_blocks - 1 layers), after_norm, tp_encoders (tp_blocks layers), tp_norm.
// A SAN-M layer: q|k|v = linear_q_k_v(LayerNorm1(x)); y = linear_out(MHA(q, k, v)) + FSMN(v), FSMN(v) =
// v + depthwise conv of v over time (kernel_size taps, left pad (kernel_size - 1) / 2 + sanm_shfit, zero
// outside the utterance); x = x + y (or y when the widths differ); x = x + w_2(relu(w_1(LayerNorm2(x)))).
// LayerNorm eps 1e-5. Tensor names: PREFIX + "encoders0.0.*", "encoders.N.*", "tp_encoders.N.*",
// "after_norm.*", "tp_norm.*" (self_attn.linear_q_k_v, self_attn.fsmn_block, self_attn.linear_out,
// feed_forward.w_1 / w_2, norm1, norm2).
//
// Input: LFR + CMVN features per utterance (host f32 [frames, input_size]); several utterances are encoded in
// one packed batch (one upload, one download, one synchronisation). Output: host f32 [frames, output_size] per
// utterance. Not thread-safe.
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "formats/safetensors.h"
#include "layers/linear.h"
#include "models/weights.h"
#include "ops/device_runner.h"
#include "runtime/exec_context.h"

namespace fathom::models::sensevoice {

struct SenseVoiceEncoderConfig {
  int input_size = 560;
  int output_size = 512;
  int attention_heads = 4;
  int linear_units = 2048;
  int num_blocks = 50;
  int tp_blocks = 20;
  int kernel_size = 11;
  int sanm_shift = 0;  // "sanm_shfit" in FunASR configs
};

// audio_encoder_conf of a FunASR config.json. Errors name `file` and the key.
Result<SenseVoiceEncoderConfig> parse_sensevoice_encoder_config(const nlohmann::json& conf, const std::string& file);

class SenseVoiceEncoder {
 public:
  // Loads the tensors under `prefix` (e.g. "audio_encoder.") onto ctx's device in `dtype`, charged to
  // ctx.account. `ctx` and `runner` (whose stream is ctx.stream: uploads, downloads, synchronisation) must
  // outlive the encoder.
  static Result<std::unique_ptr<SenseVoiceEncoder>> load(const formats::Checkpoint& ckpt, const std::string& prefix,
                                                         const SenseVoiceEncoderConfig& config, ExecContext& ctx,
                                                         ops::DeviceRunner& runner, DType dtype);
  const SenseVoiceEncoderConfig& config() const { return cfg_; }

  // Encodes each utterance (features: f32 [frames, input_size], frames >= 1). kInvalidArgument for a row
  // count that is not a whole number of input_size rows or an empty utterance.
  Result<std::vector<std::vector<float>>> encode(const std::vector<std::span<const float>>& features);

 private:
  struct Layer {
    layers::LayerNorm norm1, norm2;
    layers::Linear qkv, out, w1, w2;
    TensorView fsmn;  // [d, 1, kernel]
    int in = 0;       // input width
  };
  SenseVoiceEncoder(const SenseVoiceEncoderConfig& config, ExecContext& ctx, ops::DeviceRunner& runner, DType dtype);
  Result<Layer> load_layer(const formats::Checkpoint& ckpt, const std::string& prefix, int in);

  SenseVoiceEncoderConfig cfg_;
  ExecContext& ctx_;
  ops::DeviceRunner& runner_;
  DType dtype_;
  WeightStore store_;
  Workspace arena_;
  std::vector<Layer> layers_;     // encoders0, encoders, then tp_encoders
  int main_layers_ = 0;           // encoders0 + encoders (after_norm follows them)
  layers::LayerNorm after_norm_, tp_norm_;
};

}  // namespace fathom::models::sensevoice
