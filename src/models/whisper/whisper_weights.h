#pragma once
// Whisper's weights on the compute device, read from a Hugging Face checkpoint
// (WhisperForConditionalGeneration: `model.encoder.*`, `model.decoder.*`; a bare WhisperModel's
// `encoder.*`, `decoder.*` works too). Every tensor is checked for presence and shape and converted to
// the compute dtype (f32, f16 or bf16; from f32, f16 or bf16 in the checkpoint). Errors (kLoadFailed) name the tensor, the expected and found shape and the
// checkpoint. The output projection is tied to decoder.embed_tokens (`proj_out.weight` is used when
// present and distinct).
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "models/whisper/config.h"
#include "runtime/allocator.h"
#include "runtime/tensor.h"

namespace fathom::models::whisper {

struct WhisperLinear {
  TensorView w;     // [out, in]
  TensorView b;     // [out]; data == nullptr when the layer has no bias
  const TensorView* bias() const { return b.data ? &b : nullptr; }
};

struct WhisperNorm {
  TensorView gamma, beta;  // [d_model]
};

struct WhisperEncoderLayer {
  WhisperNorm attn_norm;
  WhisperLinear qkv;       // fused [3d, d] q | k | v (k has no bias: zeros)
  WhisperLinear out;
  WhisperNorm ffn_norm;
  WhisperLinear fc1, fc2;
};

struct WhisperDecoderLayer {
  WhisperNorm self_norm;
  WhisperLinear self_q, self_out;
  WhisperLinear self_kv;   // fused [2d, d] k | v (k has no bias: zeros)
  WhisperNorm cross_norm;
  WhisperLinear cross_q, cross_out;
  WhisperLinear cross_kv;  // fused [2d, d] k | v (k has no bias: zeros)
  WhisperNorm ffn_norm;
  WhisperLinear fc1, fc2;
};

struct WhisperWeights {
  // Encoder.
  WhisperLinear conv1, conv2;  // w [d, n_mels, 3] and [d, d, 3]
  TensorView encoder_positions;  // [max_source_positions, d]
  std::vector<WhisperEncoderLayer> encoder_layers;
  WhisperNorm encoder_norm;
  // Decoder.
  TensorView embed_tokens;       // [vocab, d]
  TensorView decoder_positions;  // [max_target_positions, d]
  std::vector<WhisperDecoderLayer> decoder_layers;
  WhisperNorm decoder_norm;
  TensorView lm_head;            // [vocab, d]: embed_tokens unless proj_out differs

  std::vector<Buffer> storage;   // owns everything above
  std::size_t bytes = 0;

  DType dtype = DType::kF32;      // of every tensor above

  // Loads DIR's checkpoint for `config` into memory of `allocator` (charged to `account`) as `dtype`.
  static Result<std::unique_ptr<WhisperWeights>> load(const std::filesystem::path& dir, const WhisperConfig& config,
                                                      Allocator& allocator, MemoryAccount* account,
                                                      DType dtype = DType::kF32);
};

}  // namespace fathom::models::whisper
