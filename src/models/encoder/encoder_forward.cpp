#include "models/encoder/encoder_forward.h"

#include <cmath>

#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/embedding.h"
#include "ops/rotary.h"

namespace fathom::models::encoder {
namespace {
std::size_t align64(std::size_t n) { return (n + 63) / 64 * 64; }
int64_t up_width(const EncoderSpec& s) { return s.mlp == MlpKind::kGated ? 2 * s.intermediate : s.intermediate; }
int64_t label_count(const EncoderSpec& s) {
  return s.classifier ? static_cast<int64_t>(s.classifier->labels.labels.size()) : 0;
}
}  // namespace

std::size_t activation_bytes(const EncoderSpec& spec, DType dtype, int64_t t, int64_t batch) {
  const std::size_t es = dtype_size(dtype);
  const int64_t h = spec.hidden;
  std::size_t n = 3 * align64(t * h * es) + align64(t * 3 * h * es) + align64(t * up_width(spec) * es);
  if (spec.norm == NormPlacement::kPre) n += align64(t * h * es);
  if (spec.mlp == MlpKind::kGated) n += align64(t * spec.intermediate * es);
  n += align64(batch * h * es) + align64(batch * h * 4);
  if (spec.classifier) {
    const int64_t l = label_count(spec);
    n += align64(batch * h * es) + align64(batch * l * es) + align64(batch * l * 4);
  }
  return n;
}

Activations carve_activations(const EncoderSpec& spec, DType dtype, Device device, void* arena, int64_t t,
                              int64_t batch) {
  const std::size_t es = dtype_size(dtype);
  const int64_t h = spec.hidden;
  auto* p = static_cast<uint8_t*>(arena);
  auto take = [&](DType dt, Shape shape) {
    TensorView v(p, dt, shape, device);
    p += align64(static_cast<std::size_t>(shape.numel()) * dtype_size(dt));
    return v;
  };
  (void)es;
  Activations a;
  a.hidden = take(dtype, Shape{t, h});
  if (spec.norm == NormPlacement::kPre) a.normed = take(dtype, Shape{t, h});
  a.qkv = take(dtype, Shape{t, 3 * h});
  a.attn = take(dtype, Shape{t, h});
  a.proj = take(dtype, Shape{t, h});
  a.mid = take(dtype, Shape{t, up_width(spec)});
  if (spec.mlp == MlpKind::kGated) a.gate = take(dtype, Shape{t, spec.intermediate});
  a.pooled = take(dtype, Shape{batch, h});
  a.pooled32 = take(DType::kF32, Shape{batch, h});
  if (spec.classifier) {
    const int64_t l = label_count(spec);
    a.head_mid = take(dtype, Shape{batch, h});
    a.logits = take(dtype, Shape{batch, l});
    a.logits32 = take(DType::kF32, Shape{batch, l});
  }
  return a;
}

Status check_network(const EncoderSpec& spec, const EncoderWeights& w) {
  auto bad = [&](const std::string& what) {
    return make_error(ErrorCode::kInternal, spec.family + ": network incomplete: " + what);
  };
  if (!w.word.data) return bad("no word embeddings");
  if (!w.embed_norm.gamma.data) return bad("no embedding norm");
  if (w.layers.size() != spec.layers.size() || spec.layers.empty()) return bad("layer count");
  if (spec.norm == NormPlacement::kPre && !w.final_norm.gamma.data) return bad("no final norm");
  if (spec.rotary_dim > 0)
    for (const auto& l : spec.layers)
      if (l.rope < 0 || l.rope >= static_cast<int>(w.inv_freq.size())) return bad("rope table index");
  if (spec.relative_bias && !w.distance_bias.data) return bad("no relative bias table");
  if (spec.heads * spec.head_dim != spec.hidden) return bad("heads * head_dim != hidden");
  if (spec.classifier) {
    const ClassifierHeadWeights& c = w.classifier;
    if (label_count(spec) < 1) return bad("classifier without labels");
    if (!c.dense.weight.data || !c.norm.gamma.data || !c.norm.beta.data) return bad("classifier head dense / norm");
    if (!c.out.weight.data || !c.out.bias.data || c.out.out_features() != label_count(spec))
      return bad("classifier output of one row per label");
  }
  return Status::Ok();
}

Status encoder_forward(ExecContext& ctx, const EncoderSpec& spec, const EncoderWeights& w, const Activations& a,
                       const TensorView& ids, const TensorView& pos, const ops::VarlenBatch& vb,
                       ops::PoolingMode pooling) {
  ops::EmbeddingTables tables{w.word, w.position.data ? &w.position : nullptr,
                              w.token_type.data ? &w.token_type : nullptr};
  FATHOM_TRY(ops::embed_tokens(ctx, ids, w.position.data ? &pos : nullptr, nullptr, tables, a.hidden));
  FATHOM_TRY(w.embed_norm.forward(ctx, a.hidden, nullptr, a.hidden));
  const float scale = 1.0f / std::sqrt(static_cast<float>(spec.head_dim));
  const bool pre = spec.norm == NormPlacement::kPre;
  for (std::size_t i = 0; i < w.layers.size(); ++i) {
    const LayerWeights& l = w.layers[i];
    const LayerSpec& ls = spec.layers[i];
    // Attention block.
    const TensorView* in = &a.hidden;
    if (pre && l.attn_norm.gamma.data) {
      FATHOM_TRY(l.attn_norm.forward(ctx, a.hidden, nullptr, a.normed));
      in = &a.normed;
    }
    FATHOM_TRY(l.qkv.forward(ctx, *in, a.qkv));
    if (spec.rotary_dim > 0)
      FATHOM_TRY(ops::rotary_qk(ctx, a.qkv, pos, spec.heads, spec.head_dim, spec.rotary_dim,
                                w.inv_freq[static_cast<std::size_t>(ls.rope)]));
    ops::AttentionExtras extras;
    if (spec.relative_bias) {
      extras.distance_bias = &w.distance_bias;
      extras.span = spec.position_limit;
    }
    extras.window_half = ls.window_half;
    FATHOM_TRY(ops::attention_varlen(ctx, a.qkv, vb, spec.heads, spec.head_dim, scale, a.attn, extras));
    FATHOM_TRY(l.attn_out.forward(ctx, a.attn, a.proj));
    if (pre) {
      FATHOM_TRY(ops::add(ctx, a.hidden, a.proj, a.hidden));
      FATHOM_TRY(l.mlp_norm.forward(ctx, a.hidden, nullptr, a.normed));
    } else {
      FATHOM_TRY(l.attn_norm.forward(ctx, a.proj, &a.hidden, a.hidden));
    }
    // MLP block.
    FATHOM_TRY(l.up.forward(ctx, pre ? a.normed : a.hidden, a.mid));
    const TensorView* act = &a.mid;
    if (spec.mlp == MlpKind::kGated) {
      FATHOM_TRY(ops::gated_activation(ctx, a.mid, a.gate, spec.gated, spec.activate_first));
      act = &a.gate;
    } else {
      FATHOM_TRY(ops::gelu(ctx, a.mid, a.mid, spec.gelu));
    }
    FATHOM_TRY(l.down.forward(ctx, *act, a.proj));
    if (pre)
      FATHOM_TRY(ops::add(ctx, a.hidden, a.proj, a.hidden));
    else
      FATHOM_TRY(l.mlp_norm.forward(ctx, a.proj, &a.hidden, a.hidden));
  }
  if (pre) FATHOM_TRY(w.final_norm.forward(ctx, a.hidden, nullptr, a.hidden));
  FATHOM_TRY(ops::pool(ctx, a.hidden, vb, pooling, a.pooled));
  if (!spec.classifier) return Status::Ok();
  const ClassifierHeadWeights& c = w.classifier;  // dense -> gelu -> norm -> out on the pooled rows
  FATHOM_TRY(c.dense.forward(ctx, a.pooled, a.head_mid));
  FATHOM_TRY(ops::gelu(ctx, a.head_mid, a.head_mid, spec.classifier->gelu));
  FATHOM_TRY(c.norm.forward(ctx, a.head_mid, nullptr, a.head_mid));
  return c.out.forward(ctx, a.head_mid, a.logits);
}

}  // namespace fathom::models::encoder
