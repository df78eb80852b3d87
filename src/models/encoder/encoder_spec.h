#pragma once
// The shape of one transformer encoder network, as the newer embedding families (MPNet, NomicBERT, GTE
// v1.5 "NewModel", ModernBERT) describe it, and the weights that fill it. A family folder parses its
// config.json into an EncoderSpec and names its tensors into EncoderWeights; the shared EncoderEmbedder
// (encoder_embedder.h) runs every spec with the same ops, batching and CUDA graphs. A spec with a
// `classifier` head (ModernBertForSequenceClassification) yields logits instead of embeddings.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "layers/linear.h"
#include "models/classifier_labels.h"
#include "ops/activation.h"
#include "ops/pooling.h"

namespace fathom::models::encoder {

enum class NormPlacement {
  kPost,  // x = norm(x + attn(x)); x = norm(x + mlp(x))            (MPNet, NomicBERT, GTE)
  kPre,   // x = x + attn(norm(x)); x = x + mlp(norm(x)); final norm (ModernBERT)
};

enum class MlpKind {
  kPlain,  // down(act(up(x))), up [I, H]
  kGated,  // down(glu(up(x))), up [2I, H] (both halves of one projection; see ops::gated_activation)
};

struct LayerSpec {
  int rope = 0;          // index into EncoderWeights::inv_freq (rotary models)
  int window_half = -1;  // sliding window |j - i| <= window_half; -1 = global attention
};

// A sequence-classification head over one pooled row per sequence (transformers' ModernBERT layout):
//   logits = out(norm(gelu(dense(pool(final hidden)))))
// dense [H, H] (bias optional), norm a LayerNorm (bias optional, the encoder's eps), out [L, H] with bias.
struct ClassifierHeadSpec {
  ClassifierLabels labels;                            // names and score activation (L = labels.labels.size())
  ops::PoolingMode pooling = ops::PoolingMode::kCls;  // the row the head reads: cls or mean
  ops::GeluMode gelu = ops::GeluMode::kErf;           // after dense
};

struct EncoderSpec {
  std::string family;       // fathom's family name, for messages
  int hidden = 0, heads = 0, head_dim = 0, intermediate = 0, vocab = 0;
  float norm_eps = 1e-12f;
  NormPlacement norm = NormPlacement::kPost;
  MlpKind mlp = MlpKind::kPlain;
  ops::GeluMode gelu = ops::GeluMode::kErf;                      // kPlain
  ops::GatedActivation gated = ops::GatedActivation::kGeluErf;   // kGated
  bool activate_first = true;  // kGated: act(first half) * second, else first * act(second)
  // Positions: position ids are position_offset + index in the sequence; they index the absolute table
  // (when EncoderWeights::position is set) and drive rotary (rotary_dim > 0).
  int position_offset = 0;
  int position_limit = 0;   // longest sequence the model can embed
  int rotary_dim = 0;       // 0: no rotary
  bool relative_bias = false;  // EncoderWeights::distance_bias is added to the scores (span position_limit)
  int32_t pad_id = 0;       // id of the padding token (CUDA graph tails)
  std::vector<LayerSpec> layers;
  std::optional<ClassifierHeadSpec> classifier;  // set: a classifier (logits out), not an embedder
};

struct LayerWeights {
  layers::Linear qkv;       // [3H, H], q | k | v
  layers::Linear attn_out;  // [H, H]
  layers::LayerNorm attn_norm;  // post: after the attention residual; pre: before attention (gamma null = identity)
  layers::Linear up;        // [I, H] or [2I, H]
  layers::Linear down;      // [H, I]
  layers::LayerNorm mlp_norm;
};

struct ClassifierHeadWeights {
  layers::Linear dense;     // [H, H]
  layers::LayerNorm norm;   // [H]
  layers::Linear out;       // [L, H] + [L]
};

struct EncoderWeights {
  TensorView word;          // [V, H]
  TensorView position;      // [P, H] or empty
  TensorView token_type;    // [Y, H] or empty (row 0 is added to every token)
  layers::LayerNorm embed_norm;
  std::vector<LayerWeights> layers;
  layers::LayerNorm final_norm;        // kPre only
  std::vector<TensorView> inv_freq;    // f32 [rotary_dim / 2] per rope table
  TensorView distance_bias;            // f32 [heads, 2 * position_limit - 1] when relative_bias
  ClassifierHeadWeights classifier;    // when EncoderSpec::classifier
};

}  // namespace fathom::models::encoder
