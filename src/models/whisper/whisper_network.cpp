#include "models/whisper/whisper_network.h"

#include <cmath>
#include <cstring>
#include <set>

#include "formats/mel/log_mel.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/attention_cached.h"
#include "ops/conv1d.h"
#include "ops/convert.h"
#include "ops/embedding.h"
#include "ops/gemm.h"
#include "ops/norm.h"
#include "ops/rows.h"

namespace fathom::models::whisper {
namespace {

constexpr float kLayerNormEps = 1e-5f;
constexpr int64_t kMelFrames = formats::kWhisperChunkFrames;
constexpr int64_t kMelSamples = formats::kWhisperChunkSamples;

std::size_t align256(std::size_t n) { return (n + 255) / 256 * 256; }

TensorView rows_of(const TensorView& t, int64_t first, int64_t count) {
  const int64_t cols = t.cols();
  auto* base = static_cast<unsigned char*>(t.data) + static_cast<std::size_t>(first * cols) * dtype_size(t.dtype);
  return TensorView(base, t.dtype, Shape{count, cols}, t.device);
}

ops::GeluMode gelu_mode(const std::string& activation) {
  return activation == "gelu" ? ops::GeluMode::kErf : ops::GeluMode::kTanh;
}

Status linear(ExecContext& ctx, const TensorView& x, const WhisperLinear& l, const TensorView& y) {
  return ops::linear(ctx, x, l.w, l.bias(), y);
}

// x += fc2(gelu(fc1(LayerNorm(x)))): the pre-LN feed-forward block closing every encoder and decoder layer.
// `normed` and `out` are scratch of x's shape (they may be the same view: fc1 reads `normed` before fc2
// writes `out`), `mid` is [rows, ffn]. Enqueues only (capturable).
Status feed_forward(ExecContext& ctx, const TensorView& x, const WhisperNorm& norm, const WhisperLinear& fc1,
                    const WhisperLinear& fc2, ops::GeluMode mode, const TensorView& normed, const TensorView& mid,
                    const TensorView& out) {
  FATHOM_TRY(ops::layer_norm(ctx, x, nullptr, norm.gamma, norm.beta, kLayerNormEps, normed));
  FATHOM_TRY(linear(ctx, normed, fc1, mid));
  FATHOM_TRY(ops::gelu(ctx, mid, mid, mode));
  FATHOM_TRY(linear(ctx, mid, fc2, out));
  return ops::add(ctx, x, out, x);
}

Error invalid_row(std::size_t i, const std::string& what) {
  return make_error(ErrorCode::kInvalidArgument, "whisper decode row " + std::to_string(i) + ": " + what);
}

// Carves consecutive 256-byte aligned views out of an arena.
class Carver {
 public:
  Carver(void* base, std::size_t offset, Device device)
      : base_(static_cast<unsigned char*>(base)), offset_(offset), device_(device) {}
  TensorView take(DType dt, Shape shape) {
    TensorView v(base_ + offset_, dt, shape, device_);
    offset_ += align256(v.nbytes());
    return v;
  }
  std::size_t offset() const { return offset_; }

 private:
  unsigned char* base_;
  std::size_t offset_;
  Device device_;
};

template <typename F>
auto guarded(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Exception& e) {
    return make_error(e.code(), std::string(what) + e.what());
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string(what) + e.what());
  }
}

}  // namespace

WhisperNetwork::WhisperNetwork(const WhisperConfig& config, std::unique_ptr<WhisperWeights> weights, ExecContext& ctx,
                               ops::DeviceRunner& runner, int slots, bool cuda_graphs)
    : cfg_(config), w_(std::move(weights)), ctx_(ctx), runner_(runner), dt_(w_->dtype), es_(dtype_size(w_->dtype)),
      head_dim_(config.d_model / config.decoder_attention_heads), enc_frames_(config.max_source_positions),
      slots_(static_cast<std::size_t>(slots)), arena_(*ctx.allocator, ctx.account) {
  if (ctx_.device.kind == DeviceKind::kCuda) {
    // Decode steps pad their rows to a power-of-two bucket: every step of a bucket runs the same kernels
    // (the same GEMM shapes), replayed from one CUDA graph per bucket when graphs are on.
    for (int b = 1;; b *= 2) {
      buckets_.push_back(b);
      if (b >= slots) break;
    }
    graphs_ = cuda_graphs && runner_.graphs_supported();
  }
  if (ctx_.device.kind == DeviceKind::kCuda) {
    // The device log-mel needs the filter bank on the device; without it windows come as host mels.
    auto filters = formats::whisper_mel_filters(cfg_.num_mel_bins);
    if (filters.ok()) {
      auto buf = alloc(filters->size() * sizeof(float));
      if (buf.ok() && ctx_.allocator->copy_from_host(buf->data(), filters->data(), filters->size() * sizeof(float)).ok())
        mel_filters_ = std::move(buf).value();
    }
  }
}

WhisperNetwork::~WhisperNetwork() { (void)runner_.synchronize(); }

Result<Buffer> WhisperNetwork::alloc(std::size_t bytes) { return Buffer::allocate(*ctx_.allocator, bytes, ctx_.account); }

std::size_t WhisperNetwork::slot_cache_bytes() const {
  const std::size_t d = static_cast<std::size_t>(cfg_.d_model);
  // + d elements: the value view of the last row reaches d past the last key | value row.
  return (static_cast<std::size_t>(cfg_.decoder_layers) * cfg_.max_target_positions * 2 * d + d) * es_;
}

std::size_t WhisperNetwork::window_bytes() const {
  const std::size_t d = static_cast<std::size_t>(cfg_.d_model);
  return (static_cast<std::size_t>(cfg_.decoder_layers) * static_cast<std::size_t>(enc_frames_) * 2 * d + d) * es_;
}

int WhisperNetwork::free_slots() const {
  int n = 0;
  for (const auto& s : slots_) n += s.in_use ? 0 : 1;
  return n;
}

Result<std::vector<int>> WhisperNetwork::acquire_slots(int n) {
  if (n < 0 || n > free_slots())
    return make_error(ErrorCode::kOverloaded, "whisper: " + std::to_string(n) + " decoder slots requested, " +
                                                  std::to_string(free_slots()) + " free");
  std::vector<int> out;
  for (int i = 0; i < static_cast<int>(slots_.size()) && static_cast<int>(out.size()) < n; ++i) {
    Slot& s = slots_[static_cast<std::size_t>(i)];
    if (s.in_use) continue;
    if (s.cache.empty()) {
      auto buf = alloc(slot_cache_bytes());
      if (!buf.ok()) {
        for (int j : out) slots_[static_cast<std::size_t>(j)].in_use = false;
        return buf.error();
      }
      s.cache = std::move(buf).value();
    }
    s.in_use = true;
    s.length = 0;
    out.push_back(i);
  }
  return out;
}

void WhisperNetwork::unbind(int slot) {
  Slot& s = slots_[static_cast<std::size_t>(slot)];
  if (s.window < 0) return;
  auto it = windows_.find(s.window);
  if (it != windows_.end() && --it->second.refs <= 0) windows_.erase(it);
  s.window = -1;
}

void WhisperNetwork::bind(int slot, int window) {
  if (slots_[static_cast<std::size_t>(slot)].window == window) return;
  ++windows_.at(window).refs;  // before unbind: the old and new window may be the same entry's last ref
  unbind(slot);
  slots_[static_cast<std::size_t>(slot)].window = window;
}

void WhisperNetwork::release_slots(const std::vector<int>& slots) {
  for (int i : slots) {
    if (i < 0 || i >= static_cast<int>(slots_.size())) continue;
    unbind(i);
    slots_[static_cast<std::size_t>(i)].in_use = false;
    slots_[static_cast<std::size_t>(i)].length = 0;
  }
}

TensorView WhisperNetwork::self_kv(int slot, int layer, int which, int rows) const {
  const int64_t d = cfg_.d_model, P = cfg_.max_target_positions;
  auto* base = slots_[static_cast<std::size_t>(slot)].cache.as<unsigned char>() +
               static_cast<std::size_t>(layer * P * 2 * d + which * d) * es_;
  return TensorView(base, dt_, Shape{rows, 2 * d}, ctx_.device);
}

TensorView WhisperNetwork::cross_kv(int window, int layer, int which) const {
  const int64_t d = cfg_.d_model, F = enc_frames_;
  auto* base = windows_.at(window).kv.as<unsigned char>() + static_cast<std::size_t>(layer * F * 2 * d + which * d) * es_;
  return TensorView(base, dt_, Shape{F, 2 * d}, ctx_.device);
}

Result<TensorView> WhisperNetwork::stage_mel(Input kind, const std::vector<std::span<const float>>& inputs,
                                             std::size_t* used) {
  const int64_t B = static_cast<int64_t>(inputs.size());
  const int64_t n_mels = cfg_.num_mel_bins;
  const std::size_t mel_bytes = static_cast<std::size_t>(B * n_mels * kMelFrames) * sizeof(float);
  if (kind == Input::kMel) {
    for (std::size_t i = 0; i < inputs.size(); ++i)
      if (static_cast<int64_t>(inputs[i].size()) != n_mels * kMelFrames)
        return make_error(ErrorCode::kInvalidArgument, "whisper encoder: window " + std::to_string(i) + " has " +
                                                           std::to_string(inputs[i].size()) + " values, expected " +
                                                           std::to_string(n_mels) + " x " + std::to_string(kMelFrames));
    FATHOM_ASSIGN_OR_RETURN(void* arena, arena_.get(align256(mel_bytes)));
    FATHOM_ASSIGN_OR_RETURN(void* stage, runner_.staging(0, mel_bytes));
    const std::size_t per = static_cast<std::size_t>(n_mels * kMelFrames);
    for (std::size_t i = 0; i < inputs.size(); ++i)
      std::memcpy(static_cast<float*>(stage) + i * per, inputs[i].data(), per * sizeof(float));
    FATHOM_TRY(runner_.upload(arena, stage, mel_bytes));
    *used = align256(mel_bytes);
    return TensorView(arena, DType::kF32, Shape{B, n_mels, kMelFrames}, ctx_.device);
  }
  if (mel_filters_.empty())
    return make_error(ErrorCode::kUnsupported, "whisper: log-mel on " + ctx_.device.to_string() + " is not available");
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (static_cast<int64_t>(inputs[i].size()) > kMelSamples)
      return make_error(ErrorCode::kInvalidArgument, "whisper encoder: audio window " + std::to_string(i) + " has " +
                                                         std::to_string(inputs[i].size()) + " samples, more than 30 s (" +
                                                         std::to_string(kMelSamples) + ")");
  const std::size_t sample_bytes = static_cast<std::size_t>(B * kMelSamples) * sizeof(float);
  FATHOM_ASSIGN_OR_RETURN(void* arena, arena_.get(align256(mel_bytes) + align256(sample_bytes)));
  auto* samples_dev = static_cast<unsigned char*>(arena) + align256(mel_bytes);
  FATHOM_ASSIGN_OR_RETURN(void* stage, runner_.staging(0, sample_bytes));
  for (std::size_t i = 0; i < inputs.size(); ++i)
    std::memcpy(static_cast<float*>(stage) + i * kMelSamples, inputs[i].data(), inputs[i].size() * sizeof(float));
  FATHOM_TRY(runner_.upload(samples_dev, stage, sample_bytes));
  TensorView filters(mel_filters_.data(), DType::kF32, Shape{n_mels, formats::kMelFreqBins}, ctx_.device);
  for (int64_t b = 0; b < B; ++b) {
    TensorView s(reinterpret_cast<float*>(samples_dev) + b * kMelSamples, DType::kF32, Shape{kMelSamples}, ctx_.device);
    TensorView out(static_cast<float*>(arena) + b * n_mels * kMelFrames, DType::kF32, Shape{n_mels, kMelFrames},
                   ctx_.device);
    FATHOM_TRY(ops::whisper_log_mel(ctx_, s, static_cast<int64_t>(inputs[static_cast<std::size_t>(b)].size()), filters, out));
  }
  *used = align256(mel_bytes) + align256(sample_bytes);
  return TensorView(arena, DType::kF32, Shape{B, n_mels, kMelFrames}, ctx_.device);
}

std::size_t WhisperNetwork::encoder_arena_bytes(int windows, bool audio) const {
  const int64_t B = windows, d = cfg_.d_model, N = B * enc_frames_;
  const int64_t wide = std::max({3 * d, static_cast<int64_t>(cfg_.encoder_ffn_dim), 4 * d});
  const std::size_t mel = static_cast<std::size_t>(B * cfg_.num_mel_bins * kMelFrames);
  std::size_t need = align256(mel * sizeof(float)) + align256(mel * es_) + 3 * align256(static_cast<std::size_t>(N * d) * es_) +
                     align256(static_cast<std::size_t>(N * wide) * es_);
  if (audio) need += align256(static_cast<std::size_t>(B * kMelSamples) * sizeof(float));
  return need;
}

Result<TensorView> WhisperNetwork::run_encoder(const TensorView& mel, std::size_t used) {
  const int64_t B = mel.dim(0);
  const int64_t n_mels = cfg_.num_mel_bins, d = cfg_.d_model, F = enc_frames_;
  const int64_t in_frames = F * 2;
  const int64_t N = B * F;
  const int64_t ffn = cfg_.encoder_ffn_dim;
  const int64_t wide = std::max({3 * d, ffn, 4 * d});  // qkv / ffn rows; also holds conv1's [B, 3000, d]
  if (arena_.capacity() < encoder_arena_bytes(static_cast<int>(B), false))
    return make_error(ErrorCode::kInternal, "whisper encoder: activation arena not sized for the batch");
  void* base = mel.data;  // the staged mel sits at the start of the arena
  Carver c(base, used, ctx_.device);
  TensorView melx = mel;
  if (dt_ != DType::kF32) {
    melx = c.take(dt_, Shape{B, n_mels, in_frames});
    FATHOM_TRY(ops::convert(ctx_, mel, melx));
  } else {
    c.take(dt_, Shape{0});
  }
  TensorView xv = c.take(dt_, Shape{B, F, d});
  TensorView hv = c.take(dt_, Shape{N, d});
  TensorView ov = c.take(dt_, Shape{N, d});
  TensorView big = c.take(dt_, Shape{N, wide});
  const auto mode = gelu_mode(cfg_.activation_function);
  // Convolutions: [B, n_mels, 3000] -> [B, 3000, d] -> [B, 1500, d].
  TensorView c1v(big.data, dt_, Shape{B, in_frames, d}, ctx_.device);
  FATHOM_TRY(ops::conv1d(ctx_, melx, ops::Conv1dInput::kChannelMajor, w_->conv1.w, &w_->conv1.b, 1, 1, c1v));
  FATHOM_TRY(ops::gelu(ctx_, c1v, c1v, mode));
  FATHOM_TRY(ops::conv1d(ctx_, c1v, ops::Conv1dInput::kTimeMajor, w_->conv2.w, &w_->conv2.b, 2, 1, xv));
  FATHOM_TRY(ops::gelu(ctx_, xv, xv, mode));
  xv = TensorView(xv.data, dt_, Shape{N, d}, ctx_.device);
  TensorView pos = rows_of(w_->encoder_positions, 0, F);
  for (int64_t b = 0; b < B; ++b) {
    TensorView xb = rows_of(xv, b * F, F);
    FATHOM_TRY(ops::add(ctx_, xb, pos, xb));
  }
  // Transformer blocks over the packed [B * 1500, d] batch.
  const int heads = cfg_.encoder_attention_heads;
  const int hd = static_cast<int>(d / heads);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  TensorView qkv(big.data, dt_, Shape{N, 3 * d}, ctx_.device);
  TensorView f(big.data, dt_, Shape{N, ffn}, ctx_.device);
  std::vector<int> lengths(static_cast<std::size_t>(B), static_cast<int>(F));
  ops::VarlenBatch vb = ops::VarlenBatch::from_lengths(lengths);
  for (const auto& L : w_->encoder_layers) {
    FATHOM_TRY(ops::layer_norm(ctx_, xv, nullptr, L.attn_norm.gamma, L.attn_norm.beta, kLayerNormEps, hv));
    FATHOM_TRY(linear(ctx_, hv, L.qkv, qkv));
    FATHOM_TRY(ops::attention_varlen(ctx_, qkv, vb, heads, hd, scale, hv));
    FATHOM_TRY(linear(ctx_, hv, L.out, ov));
    FATHOM_TRY(ops::add(ctx_, xv, ov, xv));
    FATHOM_TRY(feed_forward(ctx_, xv, L.ffn_norm, L.fc1, L.fc2, mode, hv, f, ov));
  }
  FATHOM_TRY(ops::layer_norm(ctx_, xv, nullptr, w_->encoder_norm.gamma, w_->encoder_norm.beta, kLayerNormEps, xv));
  return xv;
}

Result<std::vector<float>> WhisperNetwork::encoder_states(const std::vector<std::span<const float>>& windows) {
  return guarded("whisper encoder: ", [&]() -> Result<std::vector<float>> {
    if (windows.empty()) return std::vector<float>{};
    std::size_t used = 0;
    // Reserve the whole encoder arena first so staging the mel does not move it afterwards.
    FATHOM_TRY(arena_.get(encoder_arena_bytes(static_cast<int>(windows.size()), false)));
    FATHOM_ASSIGN_OR_RETURN(TensorView mel, stage_mel(Input::kMel, windows, &used));
    FATHOM_ASSIGN_OR_RETURN(TensorView x, run_encoder(mel, used));
    TensorView out32 = x;
    Buffer tmp;
    if (dt_ != DType::kF32) {
      FATHOM_ASSIGN_OR_RETURN(tmp, alloc(static_cast<std::size_t>(x.numel()) * sizeof(float)));
      out32 = tmp.view(DType::kF32, x.shape);
      FATHOM_TRY(ops::convert(ctx_, x, out32));
    }
    std::vector<float> out(static_cast<std::size_t>(x.numel()));
    FATHOM_ASSIGN_OR_RETURN(void* stage, runner_.staging(1, out.size() * sizeof(float)));
    FATHOM_TRY(runner_.download(stage, out32.data, out.size() * sizeof(float)));
    FATHOM_TRY(runner_.synchronize());
    std::memcpy(out.data(), stage, out.size() * sizeof(float));
    return out;
  });
}

Result<std::vector<float>> WhisperNetwork::device_log_mel(std::span<const float> samples) {
  return guarded("whisper log-mel: ", [&]() -> Result<std::vector<float>> {
    std::size_t used = 0;
    std::vector<std::span<const float>> one{samples};
    FATHOM_ASSIGN_OR_RETURN(TensorView mel, stage_mel(Input::kAudio, one, &used));
    std::vector<float> out(static_cast<std::size_t>(mel.numel()));
    FATHOM_ASSIGN_OR_RETURN(void* stage, runner_.staging(1, out.size() * sizeof(float)));
    FATHOM_TRY(runner_.download(stage, mel.data, out.size() * sizeof(float)));
    FATHOM_TRY(runner_.synchronize());
    std::memcpy(out.data(), stage, out.size() * sizeof(float));
    return out;
  });
}

Status WhisperNetwork::encode(const std::vector<std::span<const float>>& windows,
                              const std::vector<std::vector<int>>& slots) {
  return guarded("whisper encoder: ", [&] { return encode_impl(Input::kMel, windows, slots); });
}

Status WhisperNetwork::encode_audio(const std::vector<std::span<const float>>& samples,
                                    const std::vector<std::vector<int>>& slots) {
  return guarded("whisper encoder: ", [&] { return encode_impl(Input::kAudio, samples, slots); });
}

Result<std::span<float>> WhisperNetwork::decode(const std::vector<DecodeRow>& rows) {
  return guarded("whisper decoder: ", [&] { return decode_impl(rows); });
}

Status WhisperNetwork::encode_impl(Input kind, const std::vector<std::span<const float>>& windows,
                                   const std::vector<std::vector<int>>& slots) {
  if (windows.size() != slots.size())
    return make_error(ErrorCode::kInvalidArgument, "whisper encode: " + std::to_string(windows.size()) +
                                                       " windows but " + std::to_string(slots.size()) + " slot lists");
  for (const auto& list : slots)
    for (int s : list)
      if (s < 0 || s >= static_cast<int>(slots_.size()) || !slots_[static_cast<std::size_t>(s)].in_use)
        return make_error(ErrorCode::kInvalidArgument, "whisper encode: slot " + std::to_string(s) + " is not acquired");
  if (windows.empty()) return Status::Ok();
  // Size the arena for the whole encoder before staging, so the staged mel stays where it is.
  FATHOM_TRY(arena_.get(encoder_arena_bytes(static_cast<int>(windows.size()), kind == Input::kAudio)));
  std::size_t used = 0;
  FATHOM_ASSIGN_OR_RETURN(TensorView mel, stage_mel(kind, windows, &used));
  FATHOM_ASSIGN_OR_RETURN(TensorView x, run_encoder(mel, used));
  const int64_t F = enc_frames_, d = cfg_.d_model;
  const int layers = cfg_.decoder_layers;
  for (std::size_t i = 0; i < windows.size(); ++i) {
    FATHOM_ASSIGN_OR_RETURN(Buffer kv, alloc(window_bytes()));
    const int id = next_window_++;
    windows_[id].kv = std::move(kv);
    TensorView enc = rows_of(x, static_cast<int64_t>(i) * F, F);
    for (int l = 0; l < layers; ++l) {
      const auto& L = w_->decoder_layers[static_cast<std::size_t>(l)];
      TensorView dst(cross_kv(id, l, 0).data, dt_, Shape{F, 2 * d}, ctx_.device);
      Status st = linear(ctx_, enc, L.cross_kv, dst);
      if (!st.ok()) {
        if (windows_[id].refs == 0) windows_.erase(id);
        return st;
      }
    }
    for (int s : slots[i]) {
      bind(s, id);
      slots_[static_cast<std::size_t>(s)].length = 0;
    }
    if (windows_[id].refs == 0) windows_.erase(id);
  }
  // The staging buffers are reused by the next call: wait for the uploads (and the encoder).
  return runner_.synchronize();
}

Result<std::span<float>> WhisperNetwork::decode_impl(const std::vector<DecodeRow>& rows) {
  const int64_t d = cfg_.d_model;
  const int P = cfg_.max_target_positions;
  const int R = static_cast<int>(rows.size());
  if (R == 0) return std::span<float>();
  // Validate everything before touching any cache.
  std::set<int> targets;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const DecodeRow& r = rows[i];
    auto valid_slot = [&](int s) {
      return s >= 0 && s < static_cast<int>(slots_.size()) && slots_[static_cast<std::size_t>(s)].in_use;
    };
    if (!valid_slot(r.slot)) return invalid_row(i, "slot " + std::to_string(r.slot) + " is not acquired");
    if (!targets.insert(r.slot).second) return invalid_row(i, "slot " + std::to_string(r.slot) + " appears twice");
    const int src = r.source_slot >= 0 ? r.source_slot : r.slot;
    if (!valid_slot(src)) return invalid_row(i, "source slot " + std::to_string(src) + " is not acquired");
    if (slots_[static_cast<std::size_t>(src)].window < 0) return invalid_row(i, "slot has no encoded window");
    if (r.cached < 0 || r.cached > slots_[static_cast<std::size_t>(src)].length)
      return invalid_row(i, "cached " + std::to_string(r.cached) + " exceeds the " +
                                std::to_string(slots_[static_cast<std::size_t>(src)].length) + " cached positions");
    if (static_cast<int>(r.tokens.size()) <= r.cached) return invalid_row(i, "no new tokens");
    if (static_cast<int>(r.tokens.size()) > P)
      return invalid_row(i, std::to_string(r.tokens.size()) + " tokens exceed the decoder's " + std::to_string(P) +
                                " positions");
    for (auto t : r.tokens)
      if (t < 0 || t >= cfg_.vocab_size)
        return invalid_row(i, "token " + std::to_string(t) + " is outside the vocabulary of " +
                                  std::to_string(cfg_.vocab_size));
  }
  const int layers = cfg_.decoder_layers;
  // Cache copies (beam reordering): per layer one [cached, 2d] block (keys and values together). Sources
  // that are also targets are read through a snapshot.
  {
    auto block = [&](void* base, int l, int cached) {
      return TensorView(static_cast<unsigned char*>(base) + static_cast<std::size_t>(l) * cached * 2 * d * es_, dt_,
                        Shape{cached, 2 * d}, ctx_.device);
    };
    struct Pending { int slot, src, cached; Buffer snap; };
    std::vector<Pending> pending;
    for (const auto& r : rows) {
      if (r.source_slot < 0 || r.source_slot == r.slot) continue;
      Pending p{r.slot, r.source_slot, r.cached, Buffer()};
      if (targets.count(r.source_slot) && r.cached > 0) {
        FATHOM_ASSIGN_OR_RETURN(p.snap, alloc(static_cast<std::size_t>(layers) * r.cached * 2 * d * es_));
        for (int l = 0; l < layers; ++l)
          FATHOM_TRY(ops::convert(ctx_, self_kv(r.source_slot, l, 0, r.cached), block(p.snap.data(), l, r.cached)));
      }
      pending.push_back(std::move(p));
    }
    // Rebinding may drop a window's last reference while another copy still needs it: pin them first.
    std::vector<int> windows_of(slots_.size());
    for (std::size_t s = 0; s < slots_.size(); ++s) windows_of[s] = slots_[s].window;
    for (auto& p : pending) ++windows_.at(windows_of[static_cast<std::size_t>(p.src)]).refs;
    for (auto& p : pending) {
      if (p.cached > 0)
        for (int l = 0; l < layers; ++l) {
          TensorView src = p.snap.empty() ? self_kv(p.src, l, 0, p.cached) : block(p.snap.data(), l, p.cached);
          FATHOM_TRY(ops::convert(ctx_, src, self_kv(p.slot, l, 0, p.cached)));
        }
      bind(p.slot, windows_of[static_cast<std::size_t>(p.src)]);
    }
    for (auto& p : pending) {
      auto it = windows_.find(windows_of[static_cast<std::size_t>(p.src)]);
      if (it != windows_.end() && --it->second.refs <= 0) windows_.erase(it);
    }
    // Snapshots are freed at the end of this scope; the copies reading them are queued before any later
    // use of that memory on the same stream.
  }
  // The common case (one new token per row: every generation step) takes the bucketed step path.
  bool single = true;
  for (const auto& r : rows) single = single && static_cast<int>(r.tokens.size()) == r.cached + 1;
  if (single) return decode_step(rows);
  // Host inputs: token ids, positions, per layer the cache address of every new row, last-row indices.
  std::vector<int> lengths(static_cast<std::size_t>(R));
  ids_.clear();
  positions_.clear();
  last_.clear();
  for (int i = 0; i < R; ++i) {
    const DecodeRow& r = rows[static_cast<std::size_t>(i)];
    slots_[static_cast<std::size_t>(r.slot)].length = r.cached;
    lengths[static_cast<std::size_t>(i)] = static_cast<int>(r.tokens.size()) - r.cached;
    for (int p = r.cached; p < static_cast<int>(r.tokens.size()); ++p) {
      ids_.push_back(r.tokens[static_cast<std::size_t>(p)]);
      positions_.push_back(p);
    }
    last_.push_back(static_cast<int32_t>(ids_.size()) - 1);
  }
  const int64_t N = static_cast<int64_t>(ids_.size());
  addresses_.resize(static_cast<std::size_t>(N * layers));
  {
    const std::size_t row_bytes = static_cast<std::size_t>(2 * d) * es_;
    std::size_t t = 0;
    for (int i = 0; i < R; ++i) {
      const DecodeRow& r = rows[static_cast<std::size_t>(i)];
      const auto base = reinterpret_cast<intptr_t>(slots_[static_cast<std::size_t>(r.slot)].cache.data());
      for (int p = r.cached; p < static_cast<int>(r.tokens.size()); ++p, ++t)
        for (int l = 0; l < layers; ++l)
          addresses_[static_cast<std::size_t>(l) * N + t] =
              static_cast<int64_t>(base) + static_cast<int64_t>((static_cast<std::size_t>(l) * P + p) * row_bytes);
    }
  }
  const bool gather_last = N != R;
  const int64_t ffn = cfg_.decoder_ffn_dim;
  const int64_t V = cfg_.vocab_size;
  const std::size_t in_bytes = align256(addresses_.size() * 8) + 2 * align256(static_cast<std::size_t>(N) * 4) +
                               align256(static_cast<std::size_t>(R) * 4);
  const std::size_t act_bytes = 3 * align256(static_cast<std::size_t>(N * d) * es_) +
                                align256(static_cast<std::size_t>(N * std::max<int64_t>(2 * d, ffn)) * es_) +
                                align256(static_cast<std::size_t>(R * d) * es_) +
                                align256(static_cast<std::size_t>(R * V) * es_) +
                                (dt_ != DType::kF32 ? align256(static_cast<std::size_t>(R * V) * 4) : 0);
  FATHOM_ASSIGN_OR_RETURN(void* arena, arena_.get(in_bytes + act_bytes));
  // One upload of every input, staged in the same layout.
  FATHOM_ASSIGN_OR_RETURN(void* stage, runner_.staging(0, in_bytes));
  {
    auto* h = static_cast<unsigned char*>(stage);
    std::memcpy(h, addresses_.data(), addresses_.size() * 8);
    h += align256(addresses_.size() * 8);
    std::memcpy(h, ids_.data(), ids_.size() * 4);
    h += align256(static_cast<std::size_t>(N) * 4);
    std::memcpy(h, positions_.data(), positions_.size() * 4);
    h += align256(static_cast<std::size_t>(N) * 4);
    std::memcpy(h, last_.data(), last_.size() * 4);
  }
  FATHOM_TRY(runner_.upload(arena, stage, in_bytes));
  Carver c(arena, 0, ctx_.device);
  TensorView addr = c.take(DType::kI64, Shape{static_cast<int64_t>(layers) * N});
  TensorView idv = c.take(DType::kI32, Shape{N});
  TensorView posv = c.take(DType::kI32, Shape{N});
  TensorView lastv = c.take(DType::kI32, Shape{R});
  TensorView xv = c.take(dt_, Shape{N, d});
  TensorView hv = c.take(dt_, Shape{N, d});
  TensorView qv = c.take(dt_, Shape{N, d});
  TensorView wide = c.take(dt_, Shape{N, std::max<int64_t>(2 * d, ffn)});
  TensorView lastx = c.take(dt_, Shape{R, d});
  TensorView logits = c.take(dt_, Shape{R, V});
  TensorView logits32 = dt_ != DType::kF32 ? c.take(DType::kF32, Shape{R, V}) : logits;
  TensorView av(wide.data, dt_, Shape{N, d}, ctx_.device);
  TensorView kvv(wide.data, dt_, Shape{N, 2 * d}, ctx_.device);
  TensorView fv(wide.data, dt_, Shape{N, ffn}, ctx_.device);

  ops::VarlenBatch vb = ops::VarlenBatch::from_lengths(lengths);
  ops::EmbeddingTables tables{w_->embed_tokens, &w_->decoder_positions, nullptr};
  FATHOM_TRY(ops::embed_tokens(ctx_, idv, &posv, nullptr, tables, xv));

  const int heads = cfg_.decoder_attention_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim_));
  const auto mode = gelu_mode(cfg_.activation_function);
  keys_.resize(static_cast<std::size_t>(R));
  values_.resize(static_cast<std::size_t>(R));
  for (int l = 0; l < layers; ++l) {
    const auto& L = w_->decoder_layers[static_cast<std::size_t>(l)];
    // Causal self-attention over the slot caches: the new key | value rows go to their cache positions.
    FATHOM_TRY(ops::layer_norm(ctx_, xv, nullptr, L.self_norm.gamma, L.self_norm.beta, kLayerNormEps, hv));
    FATHOM_TRY(linear(ctx_, hv, L.self_q, qv));
    FATHOM_TRY(linear(ctx_, hv, L.self_kv, kvv));
    FATHOM_TRY(ops::scatter_rows(
        ctx_, kvv, TensorView(addr.ptr<int64_t>() + static_cast<int64_t>(l) * N, DType::kI64, Shape{N}, ctx_.device)));
    for (int i = 0; i < R; ++i) {
      const DecodeRow& r = rows[static_cast<std::size_t>(i)];
      const int n = static_cast<int>(r.tokens.size());
      keys_[static_cast<std::size_t>(i)] = self_kv(r.slot, l, 0, n);
      values_[static_cast<std::size_t>(i)] = self_kv(r.slot, l, 1, n);
    }
    FATHOM_TRY(ops::attention_cached(ctx_, qv, vb, keys_, values_, heads, head_dim_, scale, true, av));
    FATHOM_TRY(linear(ctx_, av, L.self_out, hv));
    FATHOM_TRY(ops::add(ctx_, xv, hv, xv));
    // Cross-attention to the slot's window.
    FATHOM_TRY(ops::layer_norm(ctx_, xv, nullptr, L.cross_norm.gamma, L.cross_norm.beta, kLayerNormEps, hv));
    FATHOM_TRY(linear(ctx_, hv, L.cross_q, qv));
    for (int i = 0; i < R; ++i) {
      const int win = slots_[static_cast<std::size_t>(rows[static_cast<std::size_t>(i)].slot)].window;
      keys_[static_cast<std::size_t>(i)] = cross_kv(win, l, 0);
      values_[static_cast<std::size_t>(i)] = cross_kv(win, l, 1);
    }
    FATHOM_TRY(ops::attention_cached(ctx_, qv, vb, keys_, values_, heads, head_dim_, scale, false, av));
    FATHOM_TRY(linear(ctx_, av, L.cross_out, hv));
    FATHOM_TRY(ops::add(ctx_, xv, hv, xv));
    // Feed-forward.
    FATHOM_TRY(feed_forward(ctx_, xv, L.ffn_norm, L.fc1, L.fc2, mode, hv, fv, hv));
  }
  for (int i = 0; i < R; ++i) {
    const DecodeRow& r = rows[static_cast<std::size_t>(i)];
    slots_[static_cast<std::size_t>(r.slot)].length = static_cast<int>(r.tokens.size());
  }
  // Last position of each row -> final norm -> logits (f32) -> one download.
  if (gather_last) {
    ops::EmbeddingTables rows_table{xv, nullptr, nullptr};
    FATHOM_TRY(ops::embed_tokens(ctx_, lastv, nullptr, nullptr, rows_table, lastx));
  } else {
    lastx = xv;  // one new token per row: rows are already the last positions
  }
  TensorView normed = gather_last ? lastx : rows_of(hv, 0, R);
  FATHOM_TRY(ops::layer_norm(ctx_, lastx, nullptr, w_->decoder_norm.gamma, w_->decoder_norm.beta, kLayerNormEps, normed));
  FATHOM_TRY(ops::linear(ctx_, normed, w_->lm_head, nullptr, logits));
  if (dt_ != DType::kF32) FATHOM_TRY(ops::convert(ctx_, logits, logits32));
  const std::size_t out_bytes = static_cast<std::size_t>(R * V) * sizeof(float);
  FATHOM_ASSIGN_OR_RETURN(void* host, runner_.staging(1, out_bytes));
  FATHOM_TRY(runner_.download(host, logits32.data, out_bytes));
  FATHOM_TRY(runner_.synchronize());
  // The logits stay in the page-locked staging buffer (valid until the next call): no host copy.
  return std::span<float>(static_cast<float*>(host), static_cast<std::size_t>(R * V));
}

WhisperNetwork::StepLayout WhisperNetwork::step_layout(int bucket) const {
  const std::size_t B = static_cast<std::size_t>(bucket), layers = static_cast<std::size_t>(cfg_.decoder_layers);
  StepLayout l;
  std::size_t at = 0;
  auto take = [&](std::size_t bytes) {
    const std::size_t here = at;
    at += align256(bytes);
    return here;
  };
  l.ids = take(B * 4);
  l.positions = take(B * 4);
  l.addresses = take(layers * B * 8);
  l.self_seqs = take(layers * B * sizeof(ops::CachedSeq));
  l.cross_seqs = take(layers * B * sizeof(ops::CachedSeq));
  l.bytes = at;
  return l;
}

namespace {

// Offsets of the step activations of one bucket inside step_act_.
struct StepActs {
  std::size_t x, h, q, wide, logits, logits32, self_scratch, cross_scratch, bytes;
};

StepActs step_acts(ExecContext& ctx, const WhisperConfig& cfg, DType dt, int bucket) {
  const std::size_t es = dtype_size(dt), B = static_cast<std::size_t>(bucket);
  const std::size_t d = static_cast<std::size_t>(cfg.d_model), V = static_cast<std::size_t>(cfg.vocab_size);
  const std::size_t wide = std::max<std::size_t>(2 * d, static_cast<std::size_t>(cfg.decoder_ffn_dim));
  const int heads = cfg.decoder_attention_heads, hd = cfg.d_model / cfg.decoder_attention_heads;
  ops::CachedAttentionBounds self{bucket, bucket, 1, cfg.max_target_positions, 2 * cfg.d_model, false};
  ops::CachedAttentionBounds cross{bucket, bucket, 1, cfg.max_source_positions, 2 * cfg.d_model, false};
  StepActs a{};
  std::size_t at = 0;
  auto take = [&](std::size_t bytes) {
    const std::size_t here = at;
    at += align256(bytes);
    return here;
  };
  a.x = take(B * d * es);
  a.h = take(B * d * es);
  a.q = take(B * d * es);
  a.wide = take(B * wide * es);
  a.logits = take(B * V * es);
  a.logits32 = dt == DType::kF32 ? a.logits : take(B * V * 4);
  a.self_scratch = take(ops::attention_cached_scratch_bytes(ctx, self, heads, hd));
  a.cross_scratch = take(ops::attention_cached_scratch_bytes(ctx, cross, heads, hd));
  a.bytes = at;
  return a;
}

}  // namespace

std::size_t WhisperNetwork::step_activation_bytes(int bucket) const {
  return step_acts(ctx_, cfg_, dt_, bucket).bytes;
}

Status WhisperNetwork::ensure_step_buffers() {
  if (!step_in_.empty()) return Status::Ok();
  // Sized once for the largest batch (every bucket's layout fits): the graphs capture these addresses.
  const int largest = buckets_.empty() ? static_cast<int>(slots_.size()) : buckets_.back();
  std::size_t act = 0;
  for (int b = 1; b <= largest; b *= 2) act = std::max(act, step_activation_bytes(b));
  act = std::max(act, step_activation_bytes(largest));
  FATHOM_ASSIGN_OR_RETURN(Buffer in, alloc(step_layout(largest).bytes));
  FATHOM_ASSIGN_OR_RETURN(Buffer acts, alloc(act));
  FATHOM_ASSIGN_OR_RETURN(Buffer pad, alloc(static_cast<std::size_t>(largest) * 2 * cfg_.d_model * es_));
  step_in_ = std::move(in);
  step_act_ = std::move(acts);
  pad_rows_ = std::move(pad);
  return Status::Ok();
}

Result<std::span<float>> WhisperNetwork::decode_step(const std::vector<DecodeRow>& rows) {
  const int R = static_cast<int>(rows.size());
  const int P = cfg_.max_target_positions, layers = cfg_.decoder_layers;
  const int64_t d = cfg_.d_model, V = cfg_.vocab_size;
  int bucket = R;
  for (int b : buckets_)
    if (b >= R) {
      bucket = b;
      break;
    }
  if (!buckets_.empty() && bucket > buckets_.back())
    return make_error(ErrorCode::kInvalidArgument, "whisper decode: " + std::to_string(R) + " rows exceed the " +
                                                       std::to_string(buckets_.back()) + "-row step bucket");
  FATHOM_TRY(ensure_step_buffers());
  const StepLayout L = step_layout(bucket);
  FATHOM_ASSIGN_OR_RETURN(void* stage, runner_.staging(0, L.bytes));
  auto* h = static_cast<unsigned char*>(stage);
  auto* ids = reinterpret_cast<int32_t*>(h + L.ids);
  auto* pos = reinterpret_cast<int32_t*>(h + L.positions);
  auto* addr = reinterpret_cast<int64_t*>(h + L.addresses);
  auto* self = reinterpret_cast<ops::CachedSeq*>(h + L.self_seqs);
  auto* cross = reinterpret_cast<ops::CachedSeq*>(h + L.cross_seqs);
  const std::size_t row_bytes = static_cast<std::size_t>(2 * d) * es_;
  const std::size_t B = static_cast<std::size_t>(bucket);
  for (int i = 0; i < bucket; ++i) {
    const std::size_t ui = static_cast<std::size_t>(i);
    if (i < R) {
      const DecodeRow& r = rows[ui];
      Slot& slot = slots_[static_cast<std::size_t>(r.slot)];
      ids[ui] = r.tokens[static_cast<std::size_t>(r.cached)];
      pos[ui] = r.cached;
      auto* cache = slot.cache.as<unsigned char>();
      auto* kv = windows_.at(slot.window).kv.as<unsigned char>();
      for (int l = 0; l < layers; ++l) {
        const std::size_t ul = static_cast<std::size_t>(l);
        unsigned char* layer = cache + ul * static_cast<std::size_t>(P) * row_bytes;
        addr[ul * B + ui] = static_cast<int64_t>(reinterpret_cast<intptr_t>(layer + static_cast<std::size_t>(r.cached) * row_bytes));
        self[ul * B + ui] = ops::CachedSeq{layer, layer + static_cast<std::size_t>(d) * es_, r.cached + 1, i, 1, 0};
        unsigned char* win = kv + ul * static_cast<std::size_t>(enc_frames_) * row_bytes;
        cross[ul * B + ui] = ops::CachedSeq{win, win + static_cast<std::size_t>(d) * es_, enc_frames_, i, 1, 0};
      }
      slot.length = r.cached + 1;
    } else {
      // Padding row: token 0 at position 0, its key | value rows go to a scratch row, it sees no keys.
      ids[ui] = 0;
      pos[ui] = 0;
      unsigned char* pad = pad_rows_.as<unsigned char>() + ui * row_bytes;
      for (int l = 0; l < layers; ++l) {
        const std::size_t ul = static_cast<std::size_t>(l);
        addr[ul * B + ui] = static_cast<int64_t>(reinterpret_cast<intptr_t>(pad));
        self[ul * B + ui] = ops::CachedSeq{pad, pad, 0, i, 1, 0};
        cross[ul * B + ui] = ops::CachedSeq{pad, pad, 0, i, 1, 0};
      }
    }
  }
  FATHOM_TRY(runner_.upload(step_in_.data(), stage, L.bytes));
  if (graphs_) {
    FATHOM_TRY(runner_.run_graph(bucket, [&] { return step_body(bucket); }));
  } else {
    FATHOM_TRY(step_body(bucket));
  }
  const StepActs a = step_acts(ctx_, cfg_, dt_, bucket);
  const std::size_t out_bytes = static_cast<std::size_t>(R * V) * sizeof(float);
  FATHOM_ASSIGN_OR_RETURN(void* host, runner_.staging(1, out_bytes));
  FATHOM_TRY(runner_.download(host, step_act_.as<unsigned char>() + a.logits32, out_bytes));
  FATHOM_TRY(runner_.synchronize());
  return std::span<float>(static_cast<float*>(host), static_cast<std::size_t>(R * V));
}

Status WhisperNetwork::step_body(int bucket) {
  const int64_t d = cfg_.d_model, V = cfg_.vocab_size, B = bucket;
  const int64_t ffn = cfg_.decoder_ffn_dim;
  const int layers = cfg_.decoder_layers;
  const StepLayout L = step_layout(bucket);
  const StepActs a = step_acts(ctx_, cfg_, dt_, bucket);
  auto* in = step_in_.as<unsigned char>();
  auto* act = step_act_.as<unsigned char>();
  const Device dev = ctx_.device;
  TensorView idv(in + L.ids, DType::kI32, Shape{B}, dev);
  TensorView posv(in + L.positions, DType::kI32, Shape{B}, dev);
  TensorView xv(act + a.x, dt_, Shape{B, d}, dev);
  TensorView hv(act + a.h, dt_, Shape{B, d}, dev);
  TensorView qv(act + a.q, dt_, Shape{B, d}, dev);
  TensorView av(act + a.wide, dt_, Shape{B, d}, dev);
  TensorView kvv(act + a.wide, dt_, Shape{B, 2 * d}, dev);
  TensorView fv(act + a.wide, dt_, Shape{B, ffn}, dev);
  TensorView logits(act + a.logits, dt_, Shape{B, V}, dev);
  TensorView logits32(act + a.logits32, DType::kF32, Shape{B, V}, dev);
  const auto* self = reinterpret_cast<const ops::CachedSeq*>(in + L.self_seqs);
  const auto* cross = reinterpret_cast<const ops::CachedSeq*>(in + L.cross_seqs);
  const bool aligned = (static_cast<std::size_t>(d) * es_) % 16 == 0;
  const ops::CachedAttentionBounds self_bounds{bucket, bucket, 1, cfg_.max_target_positions, 2 * d, aligned};
  const ops::CachedAttentionBounds cross_bounds{bucket, bucket, 1, enc_frames_, 2 * d, aligned};
  void* self_scratch = act + a.self_scratch;
  void* cross_scratch = act + a.cross_scratch;

  ops::EmbeddingTables tables{w_->embed_tokens, &w_->decoder_positions, nullptr};
  FATHOM_TRY(ops::embed_tokens(ctx_, idv, &posv, nullptr, tables, xv));
  const int heads = cfg_.decoder_attention_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim_));
  const auto mode = gelu_mode(cfg_.activation_function);
  for (int l = 0; l < layers; ++l) {
    const auto& W = w_->decoder_layers[static_cast<std::size_t>(l)];
    FATHOM_TRY(ops::layer_norm(ctx_, xv, nullptr, W.self_norm.gamma, W.self_norm.beta, kLayerNormEps, hv));
    FATHOM_TRY(linear(ctx_, hv, W.self_q, qv));
    FATHOM_TRY(linear(ctx_, hv, W.self_kv, kvv));
    FATHOM_TRY(ops::scatter_rows(ctx_, kvv,
                                 TensorView(in + L.addresses + static_cast<std::size_t>(l * B) * 8, DType::kI64,
                                            Shape{B}, dev)));
    FATHOM_TRY(ops::attention_cached_prepared(ctx_, qv, self + static_cast<std::ptrdiff_t>(l) * B, self_bounds, heads,
                                              head_dim_, scale, true, self_scratch, av));
    FATHOM_TRY(linear(ctx_, av, W.self_out, hv));
    FATHOM_TRY(ops::add(ctx_, xv, hv, xv));
    FATHOM_TRY(ops::layer_norm(ctx_, xv, nullptr, W.cross_norm.gamma, W.cross_norm.beta, kLayerNormEps, hv));
    FATHOM_TRY(linear(ctx_, hv, W.cross_q, qv));
    FATHOM_TRY(ops::attention_cached_prepared(ctx_, qv, cross + static_cast<std::ptrdiff_t>(l) * B, cross_bounds, heads,
                                              head_dim_, scale, false, cross_scratch, av));
    FATHOM_TRY(linear(ctx_, av, W.cross_out, hv));
    FATHOM_TRY(ops::add(ctx_, xv, hv, xv));
    FATHOM_TRY(feed_forward(ctx_, xv, W.ffn_norm, W.fc1, W.fc2, mode, hv, fv, hv));
  }
  FATHOM_TRY(ops::layer_norm(ctx_, xv, nullptr, w_->decoder_norm.gamma, w_->decoder_norm.beta, kLayerNormEps, hv));
  FATHOM_TRY(ops::linear(ctx_, hv, w_->lm_head, nullptr, logits));
  if (dt_ != DType::kF32) FATHOM_TRY(ops::convert(ctx_, logits, logits32));
  return Status::Ok();
}

}  // namespace fathom::models::whisper
