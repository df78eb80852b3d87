#pragma once
// The "Transformer" audio adaptor of FunASR-Nano-style audio-LLMs: maps audio encoder frames to decoder input
// embeddings.
//   frames grouped by downsample_rate k (zero padded to a multiple of k): [ceil(T / k), encoder_dim * k]
//   x = linear2(relu(linear1(groups)))                                     [chunks, llm_dim]
//   n_layer pre-norm blocks: x += linear_out(MHA(norm1(x))); x += w_2(relu(w_1(norm2(x))))  (w_1: llm_dim -> llm_dim / 4)
// LayerNorm eps 1e-12; attention heads attention_heads, scale head_dim^-0.5. Tensor names under a prefix such as
// "audio_adaptor.": linear1, linear2, blocks.N.self_attn.linear_{q,k,v,out}, blocks.N.feed_forward.w_{1,2},
// blocks.N.norm{1,2} (weights and biases). Input and output are host f32; several utterances are packed in one
// batch. Not thread-safe.
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

namespace fathom::models::audiollm {

struct AudioAdaptorConfig {
  int downsample_rate = 1;
  int encoder_dim = 512;
  int llm_dim = 1024;
  int ffn_dim = 2048;
  int n_layer = 2;
  int attention_heads = 8;
};

// audio_adaptor_conf of a FunASR config.json. Errors name `file` and the key.
Result<AudioAdaptorConfig> parse_audio_adaptor_config(const nlohmann::json& conf, const std::string& file);

class AudioAdaptor {
 public:
  // Loads the tensors under `prefix` onto ctx's device in `dtype` (charged to ctx.account); `ctx` and
  // `runner` (stream ctx.stream) must outlive the adaptor.
  static Result<std::unique_ptr<AudioAdaptor>> load(const formats::Checkpoint& ckpt, const std::string& prefix,
                                                    const AudioAdaptorConfig& config, ExecContext& ctx,
                                                    ops::DeviceRunner& runner, DType dtype);
  const AudioAdaptorConfig& config() const { return cfg_; }
  // Rows the adaptor gives for `frames` encoder frames: ceil(frames / downsample_rate).
  int output_rows(int frames) const { return (frames + cfg_.downsample_rate - 1) / cfg_.downsample_rate; }

  // Each utterance's encoder output (f32 [frames, encoder_dim], frames >= 1) -> f32 [output_rows, llm_dim].
  Result<std::vector<std::vector<float>>> forward(const std::vector<std::span<const float>>& encoder_frames);

 private:
  struct Block {
    layers::LayerNorm norm1, norm2;
    layers::Linear qkv, out, w1, w2;
  };
  AudioAdaptor(const AudioAdaptorConfig& config, ExecContext& ctx, ops::DeviceRunner& runner, DType dtype);

  AudioAdaptorConfig cfg_;
  ExecContext& ctx_;
  ops::DeviceRunner& runner_;
  DType dtype_;
  WeightStore store_;
  Workspace arena_;
  layers::Linear linear1_, linear2_;
  std::vector<Block> blocks_;
};

}  // namespace fathom::models::audiollm
