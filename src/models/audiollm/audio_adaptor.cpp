#include "models/audiollm/audio_adaptor.h"

#include <cmath>
#include <cstring>

#include "formats/json_file.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/convert.h"
#include "ops/varlen.h"

namespace fathom::models::audiollm {
namespace {

constexpr float kEps = 1e-12f;
constexpr std::size_t kAlign = 256;
std::size_t align_up(std::size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

}  // namespace

Result<AudioAdaptorConfig> parse_audio_adaptor_config(const nlohmann::json& j, const std::string& file) {
  AudioAdaptorConfig c;
  if (!j.is_object()) return make_error(ErrorCode::kLoadFailed, file + ": audio_adaptor_conf is not an object");
  FATHOM_ASSIGN_OR_RETURN(c.downsample_rate, formats::json_positive_int(j, "downsample_rate", file));
  FATHOM_ASSIGN_OR_RETURN(c.encoder_dim, formats::json_positive_int(j, "encoder_dim", file));
  FATHOM_ASSIGN_OR_RETURN(c.llm_dim, formats::json_positive_int(j, "llm_dim", file));
  FATHOM_ASSIGN_OR_RETURN(c.ffn_dim, formats::json_positive_int(j, "ffn_dim", file));
  FATHOM_ASSIGN_OR_RETURN(auto layers, formats::json_int(j, "n_layer", file));
  c.n_layer = layers ? static_cast<int>(*layers) : 0;
  FATHOM_ASSIGN_OR_RETURN(c.attention_heads, formats::json_positive_int(j, "attention_heads", file));
  if (c.n_layer < 0 || c.llm_dim % c.attention_heads != 0 || c.llm_dim % 4 != 0)
    return make_error(ErrorCode::kLoadFailed, file + ": n_layer must be >= 0 and llm_dim a multiple of attention_heads and of 4");
  return c;
}

AudioAdaptor::AudioAdaptor(const AudioAdaptorConfig& config, ExecContext& ctx, ops::DeviceRunner& runner, DType dtype)
    : cfg_(config), ctx_(ctx), runner_(runner), dtype_(dtype), store_(*ctx.allocator, ctx.account, dtype),
      arena_(*ctx.allocator, ctx.account) {}

Result<std::unique_ptr<AudioAdaptor>> AudioAdaptor::load(const formats::Checkpoint& ckpt, const std::string& prefix,
                                                         const AudioAdaptorConfig& c, ExecContext& ctx,
                                                         ops::DeviceRunner& runner, DType dtype) {
  if (!ctx.allocator) return make_error(ErrorCode::kInvalidArgument, "AudioAdaptor: ExecContext has no allocator");
  std::unique_ptr<AudioAdaptor> a(new AudioAdaptor(c, ctx, runner, dtype));
  WeightStore& s = a->store_;
  auto linear = [&](const std::string& n, int64_t o, int64_t i, layers::Linear& out) -> Status {
    FATHOM_ASSIGN_OR_RETURN(out.weight, s.load(ckpt, n + ".weight", Shape{o, i}));
    FATHOM_ASSIGN_OR_RETURN(out.bias, s.load(ckpt, n + ".bias", Shape{o}));
    return Status::Ok();
  };
  const int64_t d = c.llm_dim;
  FATHOM_TRY(linear(prefix + "linear1", c.ffn_dim, int64_t{c.encoder_dim} * c.downsample_rate, a->linear1_));
  FATHOM_TRY(linear(prefix + "linear2", d, c.ffn_dim, a->linear2_));
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string p = prefix + "blocks." + std::to_string(l) + ".";
    Block b;
    for (auto [name, norm] : {std::pair{"norm1", &b.norm1}, std::pair{"norm2", &b.norm2}}) {
      FATHOM_ASSIGN_OR_RETURN(norm->gamma, s.load(ckpt, p + name + ".weight", Shape{d}));
      FATHOM_ASSIGN_OR_RETURN(norm->beta, s.load(ckpt, p + name + ".bias", Shape{d}));
      norm->eps = kEps;
    }
    const std::string at = p + "self_attn.linear_";
    FATHOM_ASSIGN_OR_RETURN(b.qkv.weight, s.load_concat(ckpt, {at + "q.weight", at + "k.weight", at + "v.weight"}, Shape{d, d}));
    FATHOM_ASSIGN_OR_RETURN(b.qkv.bias, s.load_concat(ckpt, {at + "q.bias", at + "k.bias", at + "v.bias"}, Shape{d}));
    FATHOM_TRY(linear(at + "out", d, d, b.out));
    FATHOM_TRY(linear(p + "feed_forward.w_1", d / 4, d, b.w1));
    FATHOM_TRY(linear(p + "feed_forward.w_2", d, d / 4, b.w2));
    a->blocks_.push_back(b);
  }
  return a;
}

Result<std::vector<std::vector<float>>> AudioAdaptor::forward(const std::vector<std::span<const float>>& frames) {
  const int e = cfg_.encoder_dim, k = cfg_.downsample_rate, d = cfg_.llm_dim, f = cfg_.ffn_dim;
  const int group = e * k;
  std::vector<int> lengths;
  for (std::size_t u = 0; u < frames.size(); ++u) {
    if (frames[u].empty() || frames[u].size() % static_cast<std::size_t>(e) != 0)
      return make_error(ErrorCode::kInvalidArgument, "AudioAdaptor: utterance " + std::to_string(u) + " has " +
                                                         std::to_string(frames[u].size()) +
                                                         " values, not a positive number of rows of " + std::to_string(e));
    lengths.push_back(output_rows(static_cast<int>(frames[u].size() / static_cast<std::size_t>(e))));
  }
  std::vector<std::vector<float>> outputs(frames.size());
  if (frames.empty()) return outputs;
  const ops::VarlenBatch batch = ops::VarlenBatch::from_lengths(lengths);
  const int64_t T = batch.total();
  const std::size_t es = dtype_size(dtype_), t = static_cast<std::size_t>(T);
  std::size_t at = 0;
  auto take = [&](std::size_t bytes) {
    const std::size_t off = at;
    at += align_up(bytes);
    return off;
  };
  const std::size_t o_in = take(t * group * es), o_ffn = take(t * f * es), o_x = take(t * d * es), o_h = take(t * d * es),
                    o_qkv = take(t * 3 * d * es), o_att = take(t * d * es), o_mid = take(t * (d / 4) * es);
  FATHOM_ASSIGN_OR_RETURN(void* mem, arena_.get(at));
  auto* base = static_cast<unsigned char*>(mem);
  auto view = [&](std::size_t off, int64_t cols) { return TensorView(base + off, dtype_, Shape{T, cols}, ctx_.device); };
  {
    // Frames grouped k at a time: an utterance's zero-padded [rows * k, e] block read as [rows, e * k].
    std::vector<float> grouped(t * group, 0.0f);
    for (int b = 0; b < batch.batch(); ++b)
      std::memcpy(grouped.data() + static_cast<std::size_t>(batch.cu_seqlens[b]) * group, frames[static_cast<std::size_t>(b)].data(),
                  frames[static_cast<std::size_t>(b)].size() * sizeof(float));
    FATHOM_ASSIGN_OR_RETURN(void* staging, runner_.staging(0, t * group * es));
    CpuExecContext cpu;
    FATHOM_TRY(ops::convert(cpu.ctx(), TensorView(grouped.data(), DType::kF32, Shape{T * group}),
                            TensorView(staging, dtype_, Shape{T * group})));
    FATHOM_TRY(runner_.upload(base + o_in, staging, t * group * es));
  }
  const TensorView ffn = view(o_ffn, f), x = view(o_x, d), h = view(o_h, d), qkv = view(o_qkv, 3 * d), att = view(o_att, d);
  FATHOM_TRY(linear1_.forward(ctx_, view(o_in, group), ffn));
  FATHOM_TRY(ops::relu(ctx_, ffn, ffn));
  FATHOM_TRY(linear2_.forward(ctx_, ffn, x));
  const int heads = cfg_.attention_heads, hd = d / heads;
  const TensorView mid = view(o_mid, d / 4);
  for (const Block& blk : blocks_) {
    FATHOM_TRY(blk.norm1.forward(ctx_, x, nullptr, h));
    FATHOM_TRY(blk.qkv.forward(ctx_, h, qkv));
    FATHOM_TRY(ops::attention_varlen(ctx_, qkv, batch, heads, hd, 1.0f / std::sqrt(static_cast<float>(hd)), att));
    FATHOM_TRY(blk.out.forward(ctx_, att, h));
    FATHOM_TRY(ops::add(ctx_, x, h, x));
    FATHOM_TRY(blk.norm2.forward(ctx_, x, nullptr, h));
    FATHOM_TRY(blk.w1.forward(ctx_, h, mid));
    FATHOM_TRY(ops::relu(ctx_, mid, mid));
    FATHOM_TRY(blk.w2.forward(ctx_, mid, h));
    FATHOM_TRY(ops::add(ctx_, x, h, x));
  }
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

}  // namespace fathom::models::audiollm
