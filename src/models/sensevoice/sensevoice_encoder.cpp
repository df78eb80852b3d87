#include "models/sensevoice/sensevoice_encoder.h"

#include <cmath>
#include <cstring>

#include "formats/json_file.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/convert.h"
#include "ops/fsmn.h"
#include "ops/varlen.h"

namespace fathom::models::sensevoice {
namespace {

constexpr float kEps = 1e-5f;
constexpr std::size_t kAlign = 256;
std::size_t align_up(std::size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

}  // namespace

Result<SenseVoiceEncoderConfig> parse_sensevoice_encoder_config(const nlohmann::json& j, const std::string& file) {
  SenseVoiceEncoderConfig c;
  if (!j.is_object()) return make_error(ErrorCode::kLoadFailed, file + ": audio_encoder_conf is not an object");
  FATHOM_ASSIGN_OR_RETURN(c.input_size, formats::json_positive_int(j, "input_size", file));
  FATHOM_ASSIGN_OR_RETURN(c.output_size, formats::json_positive_int(j, "output_size", file));
  FATHOM_ASSIGN_OR_RETURN(c.attention_heads, formats::json_positive_int(j, "attention_heads", file));
  FATHOM_ASSIGN_OR_RETURN(c.linear_units, formats::json_positive_int(j, "linear_units", file));
  FATHOM_ASSIGN_OR_RETURN(c.num_blocks, formats::json_positive_int(j, "num_blocks", file));
  FATHOM_ASSIGN_OR_RETURN(auto tp, formats::json_int(j, "tp_blocks", file));
  c.tp_blocks = tp ? static_cast<int>(*tp) : 0;
  FATHOM_ASSIGN_OR_RETURN(c.kernel_size, formats::json_positive_int(j, "kernel_size", file));
  FATHOM_ASSIGN_OR_RETURN(auto shift, formats::json_int(j, "sanm_shfit", file));
  c.sanm_shift = shift ? static_cast<int>(*shift) : 0;
  if (c.output_size % c.attention_heads != 0)
    return make_error(ErrorCode::kLoadFailed, file + ": output_size must be a multiple of attention_heads");
  const int left = (c.kernel_size - 1) / 2 + c.sanm_shift;
  if (c.tp_blocks < 0 || c.sanm_shift < 0 || left >= c.kernel_size)
    return make_error(ErrorCode::kLoadFailed, file + ": tp_blocks and sanm_shfit must be >= 0 and the FSMN left pad "
                                                     "((kernel_size - 1) / 2 + sanm_shfit) below kernel_size");
  if (c.input_size % 2 != 0) return make_error(ErrorCode::kLoadFailed, file + ": input_size must be even");
  return c;
}

SenseVoiceEncoder::SenseVoiceEncoder(const SenseVoiceEncoderConfig& config, ExecContext& ctx, ops::DeviceRunner& runner,
                                     DType dtype)
    : cfg_(config), ctx_(ctx), runner_(runner), dtype_(dtype), store_(*ctx.allocator, ctx.account, dtype), arena_(*ctx.allocator, ctx.account) {}

Result<SenseVoiceEncoder::Layer> SenseVoiceEncoder::load_layer(const formats::Checkpoint& ckpt, const std::string& p, int in) {
  const int64_t d = cfg_.output_size, u = cfg_.linear_units;
  Layer L;
  L.in = in;
  auto norm = [&](const std::string& n, int64_t w, layers::LayerNorm& out) -> Status {
    FATHOM_ASSIGN_OR_RETURN(out.gamma, store_.load(ckpt, p + n + ".weight", Shape{w}));
    FATHOM_ASSIGN_OR_RETURN(out.beta, store_.load(ckpt, p + n + ".bias", Shape{w}));
    out.eps = kEps;
    return Status::Ok();
  };
  auto linear = [&](const std::string& n, int64_t o, int64_t i, layers::Linear& out) -> Status {
    FATHOM_ASSIGN_OR_RETURN(out.weight, store_.load(ckpt, p + n + ".weight", Shape{o, i}));
    FATHOM_ASSIGN_OR_RETURN(out.bias, store_.load(ckpt, p + n + ".bias", Shape{o}));
    return Status::Ok();
  };
  FATHOM_TRY(norm("norm1", in, L.norm1));
  FATHOM_TRY(norm("norm2", d, L.norm2));
  FATHOM_TRY(linear("self_attn.linear_q_k_v", 3 * d, in, L.qkv));
  FATHOM_TRY(linear("self_attn.linear_out", d, d, L.out));
  FATHOM_TRY(linear("feed_forward.w_1", u, d, L.w1));
  FATHOM_TRY(linear("feed_forward.w_2", d, u, L.w2));
  FATHOM_ASSIGN_OR_RETURN(L.fsmn, store_.load(ckpt, p + "self_attn.fsmn_block.weight", Shape{d, 1, cfg_.kernel_size}));
  return L;
}

Result<std::unique_ptr<SenseVoiceEncoder>> SenseVoiceEncoder::load(const formats::Checkpoint& ckpt, const std::string& prefix,
                                                                   const SenseVoiceEncoderConfig& config, ExecContext& ctx,
                                                                   ops::DeviceRunner& runner, DType dtype) {
  if (!ctx.allocator) return make_error(ErrorCode::kInvalidArgument, "SenseVoiceEncoder: ExecContext has no allocator");
  std::unique_ptr<SenseVoiceEncoder> e(new SenseVoiceEncoder(config, ctx, runner, dtype));
  FATHOM_ASSIGN_OR_RETURN(Layer first, e->load_layer(ckpt, prefix + "encoders0.0.", config.input_size));
  e->layers_.push_back(first);
  for (int i = 0; i < config.num_blocks - 1; ++i) {
    FATHOM_ASSIGN_OR_RETURN(Layer l, e->load_layer(ckpt, prefix + "encoders." + std::to_string(i) + ".", config.output_size));
    e->layers_.push_back(l);
  }
  e->main_layers_ = static_cast<int>(e->layers_.size());
  for (int i = 0; i < config.tp_blocks; ++i) {
    FATHOM_ASSIGN_OR_RETURN(Layer l, e->load_layer(ckpt, prefix + "tp_encoders." + std::to_string(i) + ".", config.output_size));
    e->layers_.push_back(l);
  }
  const int64_t d = config.output_size;
  for (auto [name, norm] : {std::pair{"after_norm", &e->after_norm_}, std::pair{"tp_norm", &e->tp_norm_}}) {
    FATHOM_ASSIGN_OR_RETURN(norm->gamma, e->store_.load(ckpt, prefix + name + ".weight", Shape{d}));
    FATHOM_ASSIGN_OR_RETURN(norm->beta, e->store_.load(ckpt, prefix + name + ".bias", Shape{d}));
    norm->eps = kEps;
  }
  return e;
}

Result<std::vector<std::vector<float>>> SenseVoiceEncoder::encode(const std::vector<std::span<const float>>& features) {
  const int in = cfg_.input_size, d = cfg_.output_size, units = cfg_.linear_units, heads = cfg_.attention_heads;
  std::vector<int> lengths;
  for (std::size_t u = 0; u < features.size(); ++u) {
    if (features[u].empty() || features[u].size() % static_cast<std::size_t>(in) != 0)
      return make_error(ErrorCode::kInvalidArgument, "SenseVoiceEncoder: utterance " + std::to_string(u) + " has " +
                                                         std::to_string(features[u].size()) +
                                                         " values, not a positive number of rows of " + std::to_string(in));
    lengths.push_back(static_cast<int>(features[u].size() / static_cast<std::size_t>(in)));
  }
  std::vector<std::vector<float>> outputs(features.size());
  if (features.empty()) return outputs;
  ops::VarlenBatch batch = ops::VarlenBatch::from_lengths(lengths);
  const int64_t T = batch.total();
  // Scaled input with positions, on the host in f32 (positions 1..len per utterance).
  std::vector<float> x0(static_cast<std::size_t>(T) * in);
  const float sqrt_d = static_cast<float>(std::sqrt(static_cast<double>(d)));
  const int half = in / 2;
  const float inc = std::log(10000.0f) / static_cast<float>(half - 1);
  std::vector<float> inv(static_cast<std::size_t>(half));
  for (int i = 0; i < half; ++i) inv[static_cast<std::size_t>(i)] = std::exp(static_cast<float>(i) * -inc);
  for (int b = 0; b < batch.batch(); ++b)
    for (int t = batch.cu_seqlens[b]; t < batch.cu_seqlens[b + 1]; ++t) {
      const float pos = static_cast<float>(t - batch.cu_seqlens[b] + 1);
      const float* src = features[static_cast<std::size_t>(b)].data() + static_cast<std::size_t>(t - batch.cu_seqlens[b]) * in;
      float* row = x0.data() + static_cast<std::size_t>(t) * in;
      for (int i = 0; i < half; ++i) {
        const float s = pos * inv[static_cast<std::size_t>(i)];
        row[i] = src[i] * sqrt_d + std::sin(s);
        row[half + i] = src[half + i] * sqrt_d + std::cos(s);
      }
    }
  // Arena: input, activations, device cu_seqlens.
  const std::size_t es = dtype_size(dtype_), t = static_cast<std::size_t>(T);
  const std::size_t wide = static_cast<std::size_t>(std::max(in, d));
  std::size_t at = 0;
  auto take = [&](std::size_t bytes) {
    const std::size_t off = at;
    at += align_up(bytes);
    return off;
  };
  const std::size_t o_in = take(t * in * es), o_x = take(t * d * es), o_h = take(t * wide * es), o_qkv = take(t * 3 * d * es),
                    o_att = take(t * d * es), o_a = take(t * d * es), o_mem = take(t * d * es),
                    o_ff = take(t * units * es), o_cu = take((lengths.size() + 1) * 4);
  FATHOM_ASSIGN_OR_RETURN(void* mem, arena_.get(at));
  auto* base = static_cast<unsigned char*>(mem);
  auto view = [&](std::size_t off, int64_t cols) { return TensorView(base + off, dtype_, Shape{T, cols}, ctx_.device); };
  // Upload (converting to the compute dtype on the host).
  {
    const std::size_t in_bytes = t * in * es, cu_bytes = batch.cu_seqlens.size() * 4;
    FATHOM_ASSIGN_OR_RETURN(void* staging, runner_.staging(0, in_bytes + cu_bytes));
    auto* host = static_cast<unsigned char*>(staging);
    CpuExecContext cpu;
    FATHOM_TRY(ops::convert(cpu.ctx(), TensorView(x0.data(), DType::kF32, Shape{T * in}), TensorView(host, dtype_, Shape{T * in})));
    std::memcpy(host + in_bytes, batch.cu_seqlens.data(), cu_bytes);
    FATHOM_TRY(runner_.upload(base + o_in, host, in_bytes));
    FATHOM_TRY(runner_.upload(base + o_cu, host + in_bytes, cu_bytes));
  }
  batch.cu_seqlens_device = TensorView(base + o_cu, DType::kI32, Shape{batch.batch() + 1}, ctx_.device);
  const int hd = d / heads;
  const int left = (cfg_.kernel_size - 1) / 2 + cfg_.sanm_shift;
  const TensorView x = view(o_x, d), qkv = view(o_qkv, 3 * d), att = view(o_att, d), a = view(o_a, d), m = view(o_mem, d),
                   ff = view(o_ff, units);
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = layers_[l];
    const TensorView input = l == 0 ? view(o_in, in) : x;
    const TensorView h = view(o_h, L.in);
    FATHOM_TRY(L.norm1.forward(ctx_, input, nullptr, h));
    FATHOM_TRY(L.qkv.forward(ctx_, h, qkv));
    FATHOM_TRY(ops::attention_varlen(ctx_, qkv, batch, heads, hd, 1.0f / std::sqrt(static_cast<float>(hd)), att));
    FATHOM_TRY(L.out.forward(ctx_, att, a));
    FATHOM_TRY(ops::fsmn_memory(ctx_, qkv, 2 * d, L.fsmn, left, batch, m));
    if (L.in == d) {
      FATHOM_TRY(ops::add(ctx_, a, m, a));
      FATHOM_TRY(ops::add(ctx_, x, a, x));
    } else {
      FATHOM_TRY(ops::add(ctx_, a, m, x));
    }
    const TensorView hn = view(o_h, d);
    FATHOM_TRY(L.norm2.forward(ctx_, x, nullptr, hn));
    FATHOM_TRY(L.w1.forward(ctx_, hn, ff));
    FATHOM_TRY(ops::relu(ctx_, ff, ff));
    FATHOM_TRY(L.w2.forward(ctx_, ff, a));
    FATHOM_TRY(ops::add(ctx_, x, a, x));
    if (static_cast<int>(l) + 1 == main_layers_) FATHOM_TRY(after_norm_.forward(ctx_, x, nullptr, x));
  }
  FATHOM_TRY(tp_norm_.forward(ctx_, x, nullptr, x));
  std::vector<unsigned char> raw(t * d * es);
  FATHOM_TRY(runner_.download(raw.data(), x.data, raw.size()));
  FATHOM_TRY(runner_.synchronize());
  std::vector<float> all(t * d);
  CpuExecContext cpu;
  FATHOM_TRY(ops::convert(cpu.ctx(), TensorView(raw.data(), dtype_, Shape{T * d}), TensorView(all.data(), DType::kF32, Shape{T * d})));
  for (int b = 0; b < batch.batch(); ++b)
    outputs[static_cast<std::size_t>(b)].assign(all.begin() + static_cast<std::ptrdiff_t>(batch.cu_seqlens[b]) * d,
                                                all.begin() + static_cast<std::ptrdiff_t>(batch.cu_seqlens[b + 1]) * d);
  return outputs;
}

}  // namespace fathom::models::sensevoice
