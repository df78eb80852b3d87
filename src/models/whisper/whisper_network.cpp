#include "models/whisper/whisper_network.h"

#include <cmath>
#include <set>

#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/attention_cached.h"
#include "ops/conv1d.h"
#include "ops/convert.h"
#include "ops/embedding.h"
#include "ops/gemm.h"
#include "ops/norm.h"

namespace fathom::models::whisper {
namespace {

constexpr float kLayerNormEps = 1e-5f;

TensorView rows_of(const TensorView& t, int64_t first, int64_t count) {
  const int64_t cols = t.cols();
  return TensorView(t.ptr<float>() + first * cols, t.dtype, Shape{count, cols}, t.device);
}

ops::GeluMode gelu_mode(const std::string& activation) {
  return activation == "gelu" ? ops::GeluMode::kErf : ops::GeluMode::kTanh;
}

Status linear(ExecContext& ctx, const TensorView& x, const WhisperLinear& l, const TensorView& y) {
  return ops::linear(ctx, x, l.w, l.bias(), y);
}

// Device copy of equally sized f32 tensors.
Status copy(ExecContext& ctx, const TensorView& src, const TensorView& dst) { return ops::convert(ctx, src, dst); }

Error invalid_row(std::size_t i, const std::string& what) {
  return make_error(ErrorCode::kInvalidArgument, "whisper decode row " + std::to_string(i) + ": " + what);
}

}  // namespace

WhisperNetwork::WhisperNetwork(const WhisperConfig& config, std::unique_ptr<WhisperWeights> weights, ExecContext& ctx,
                               int slots)
    : cfg_(config), w_(std::move(weights)), ctx_(ctx), head_dim_(config.d_model / config.decoder_attention_heads),
      enc_frames_(config.max_source_positions), slots_(static_cast<std::size_t>(slots)) {}

Result<Buffer> WhisperNetwork::alloc(std::size_t floats) {
  return Buffer::allocate(*ctx_.allocator, floats * sizeof(float), ctx_.account);
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
      auto buf = alloc(static_cast<std::size_t>(cfg_.decoder_layers) * 2 * cfg_.max_target_positions * cfg_.d_model);
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

TensorView WhisperNetwork::self_kv(int slot, int layer, int which, int rows) {
  const int64_t d = cfg_.d_model, P = cfg_.max_target_positions;
  float* base = slots_[static_cast<std::size_t>(slot)].cache.as<float>() + ((layer * 2 + which) * P) * d;
  return TensorView(base, DType::kF32, Shape{rows, d}, ctx_.device);
}

TensorView WhisperNetwork::cross_kv(int window, int layer, int which) {
  const int64_t d = cfg_.d_model, F = enc_frames_;
  float* base = windows_.at(window).kv.as<float>() + ((layer * 2 + which) * F) * d;
  return TensorView(base, DType::kF32, Shape{F, d}, ctx_.device);
}

Result<Buffer> WhisperNetwork::run_encoder(const std::vector<std::span<const float>>& windows) {
  const int64_t B = static_cast<int64_t>(windows.size());
  const int64_t n_mels = cfg_.num_mel_bins, d = cfg_.d_model, F = enc_frames_;
  const int64_t in_frames = F * 2;
  for (std::size_t i = 0; i < windows.size(); ++i)
    if (static_cast<int64_t>(windows[i].size()) != n_mels * in_frames)
      return make_error(ErrorCode::kInvalidArgument, "whisper encoder: window " + std::to_string(i) + " has " +
                                                         std::to_string(windows[i].size()) + " values, expected " +
                                                         std::to_string(n_mels) + " x " + std::to_string(in_frames));
  const std::size_t mel_floats = static_cast<std::size_t>(n_mels * in_frames);
  FATHOM_ASSIGN_OR_RETURN(Buffer mel, alloc(mel_floats * static_cast<std::size_t>(B)));
  for (int64_t b = 0; b < B; ++b)
    FATHOM_TRY(ctx_.allocator->copy_from_host(mel.as<float>() + b * static_cast<int64_t>(mel_floats),
                                              windows[static_cast<std::size_t>(b)].data(), mel_floats * sizeof(float)));
  const auto mode = gelu_mode(cfg_.activation_function);
  // Convolutions: [B, n_mels, 3000] -> [B, 3000, d] -> [B, 1500, d].
  FATHOM_ASSIGN_OR_RETURN(Buffer c1, alloc(static_cast<std::size_t>(B * in_frames * d)));
  TensorView c1v = c1.view(DType::kF32, Shape{B, in_frames, d});
  FATHOM_TRY(ops::conv1d(ctx_, mel.view(DType::kF32, Shape{B, n_mels, in_frames}), ops::Conv1dInput::kChannelMajor,
                         w_->conv1.w, &w_->conv1.b, 1, 1, c1v));
  FATHOM_TRY(ops::gelu(ctx_, c1v, c1v, mode));
  mel.reset();
  const int64_t N = B * F;
  FATHOM_ASSIGN_OR_RETURN(Buffer x, alloc(static_cast<std::size_t>(N * d)));
  TensorView xv = x.view(DType::kF32, Shape{B, F, d});
  FATHOM_TRY(ops::conv1d(ctx_, c1v, ops::Conv1dInput::kTimeMajor, w_->conv2.w, &w_->conv2.b, 2, 1, xv));
  c1.reset();
  FATHOM_TRY(ops::gelu(ctx_, xv, xv, mode));
  TensorView pos = rows_of(w_->encoder_positions, 0, F);
  for (int64_t b = 0; b < B; ++b) {
    TensorView xb = rows_of(x.view(DType::kF32, Shape{N, d}), b * F, F);
    FATHOM_TRY(ops::add(ctx_, xb, pos, xb));
  }
  // Transformer blocks over the packed [B * 1500, d] batch.
  xv = x.view(DType::kF32, Shape{N, d});
  const int heads = cfg_.encoder_attention_heads;
  const int hd = static_cast<int>(d / heads);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t ffn = cfg_.encoder_ffn_dim;
  FATHOM_ASSIGN_OR_RETURN(Buffer h, alloc(static_cast<std::size_t>(N * d)));
  FATHOM_ASSIGN_OR_RETURN(Buffer big, alloc(static_cast<std::size_t>(N * std::max<int64_t>(3 * d, ffn))));
  FATHOM_ASSIGN_OR_RETURN(Buffer o, alloc(static_cast<std::size_t>(N * d)));
  TensorView hv = h.view(DType::kF32, Shape{N, d});
  TensorView ov = o.view(DType::kF32, Shape{N, d});
  TensorView qkv = big.view(DType::kF32, Shape{N, 3 * d});
  TensorView f = big.view(DType::kF32, Shape{N, ffn});
  std::vector<int> lengths(static_cast<std::size_t>(B), static_cast<int>(F));
  ops::VarlenBatch vb = ops::VarlenBatch::from_lengths(lengths);
  for (const auto& L : w_->encoder_layers) {
    FATHOM_TRY(ops::layer_norm(ctx_, xv, nullptr, L.attn_norm.gamma, L.attn_norm.beta, kLayerNormEps, hv));
    FATHOM_TRY(linear(ctx_, hv, L.qkv, qkv));
    FATHOM_TRY(ops::attention_varlen(ctx_, qkv, vb, heads, hd, scale, hv));
    FATHOM_TRY(linear(ctx_, hv, L.out, ov));
    FATHOM_TRY(ops::add(ctx_, xv, ov, xv));
    FATHOM_TRY(ops::layer_norm(ctx_, xv, nullptr, L.ffn_norm.gamma, L.ffn_norm.beta, kLayerNormEps, hv));
    FATHOM_TRY(linear(ctx_, hv, L.fc1, f));
    FATHOM_TRY(ops::gelu(ctx_, f, f, mode));
    FATHOM_TRY(linear(ctx_, f, L.fc2, ov));
    FATHOM_TRY(ops::add(ctx_, xv, ov, xv));
  }
  FATHOM_TRY(ops::layer_norm(ctx_, xv, nullptr, w_->encoder_norm.gamma, w_->encoder_norm.beta, kLayerNormEps, xv));
  return x;
}

Result<std::vector<float>> WhisperNetwork::encoder_states(const std::vector<std::span<const float>>& windows) {
  FATHOM_ASSIGN_OR_RETURN(Buffer x, run_encoder(windows));
  std::vector<float> out(x.size() / sizeof(float));
  FATHOM_TRY(ctx_.allocator->copy_to_host(out.data(), x.data(), x.size()));
  return out;
}

Status WhisperNetwork::encode(const std::vector<std::span<const float>>& windows,
                              const std::vector<std::vector<int>>& slots) {
  try {
    return encode_impl(windows, slots);
  } catch (const Exception& e) {
    return make_error(e.code(), std::string("whisper encoder: ") + e.what());
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("whisper encoder: ") + e.what());
  }
}

Result<std::vector<float>> WhisperNetwork::decode(const std::vector<DecodeRow>& rows) {
  try {
    return decode_impl(rows);
  } catch (const Exception& e) {
    return make_error(e.code(), std::string("whisper decoder: ") + e.what());
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("whisper decoder: ") + e.what());
  }
}

Status WhisperNetwork::encode_impl(const std::vector<std::span<const float>>& windows,
                                   const std::vector<std::vector<int>>& slots) {
  if (windows.size() != slots.size())
    return make_error(ErrorCode::kInvalidArgument, "whisper encode: " + std::to_string(windows.size()) +
                                                       " windows but " + std::to_string(slots.size()) + " slot lists");
  for (const auto& list : slots)
    for (int s : list)
      if (s < 0 || s >= static_cast<int>(slots_.size()) || !slots_[static_cast<std::size_t>(s)].in_use)
        return make_error(ErrorCode::kInvalidArgument, "whisper encode: slot " + std::to_string(s) + " is not acquired");
  if (windows.empty()) return Status::Ok();
  FATHOM_ASSIGN_OR_RETURN(Buffer x, run_encoder(windows));
  const int64_t d = cfg_.d_model, F = enc_frames_;
  const int layers = cfg_.decoder_layers;
  TensorView all = x.view(DType::kF32, Shape{static_cast<int64_t>(windows.size()) * F, d});
  for (std::size_t i = 0; i < windows.size(); ++i) {
    FATHOM_ASSIGN_OR_RETURN(Buffer kv, alloc(static_cast<std::size_t>(layers) * 2 * F * d));
    const int id = next_window_++;
    windows_[id].kv = std::move(kv);
    TensorView enc = rows_of(all, static_cast<int64_t>(i) * F, F);
    for (int l = 0; l < layers; ++l) {
      const auto& L = w_->decoder_layers[static_cast<std::size_t>(l)];
      Status st = linear(ctx_, enc, L.cross_k, cross_kv(id, l, 0));
      if (st.ok()) st = linear(ctx_, enc, L.cross_v, cross_kv(id, l, 1));
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
  return Status::Ok();
}

Result<std::vector<float>> WhisperNetwork::decode_impl(const std::vector<DecodeRow>& rows) {
  const int64_t d = cfg_.d_model;
  const int P = cfg_.max_target_positions;
  const int R = static_cast<int>(rows.size());
  if (R == 0) return std::vector<float>{};
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
  // Cache copies (beam reordering). Sources that are also targets are read through a snapshot.
  {
    struct Pending { int slot, src, cached; Buffer snap; };
    std::vector<Pending> pending;
    for (const auto& r : rows) {
      if (r.source_slot < 0 || r.source_slot == r.slot) continue;
      Pending p{r.slot, r.source_slot, r.cached, Buffer()};
      if (targets.count(r.source_slot) && r.cached > 0) {
        FATHOM_ASSIGN_OR_RETURN(p.snap, alloc(static_cast<std::size_t>(layers) * 2 * r.cached * d));
        for (int l = 0; l < layers; ++l)
          for (int which = 0; which < 2; ++which)
            FATHOM_TRY(copy(ctx_, self_kv(r.source_slot, l, which, r.cached),
                            TensorView(p.snap.as<float>() + (l * 2 + which) * r.cached * d, DType::kF32,
                                       Shape{r.cached, d}, ctx_.device)));
      }
      pending.push_back(std::move(p));
    }
    // Rebinding may drop a window's last reference while another copy still needs it: pin them first.
    std::vector<int> windows_of(slots_.size());
    for (std::size_t s = 0; s < slots_.size(); ++s) windows_of[s] = slots_[s].window;
    for (auto& p : pending) ++windows_.at(windows_of[static_cast<std::size_t>(p.src)]).refs;
    for (auto& p : pending) {
      if (p.cached > 0) {
        for (int l = 0; l < layers; ++l)
          for (int which = 0; which < 2; ++which) {
            TensorView src = p.snap.empty() ? self_kv(p.src, l, which, p.cached)
                                            : TensorView(p.snap.as<float>() + (l * 2 + which) * p.cached * d,
                                                         DType::kF32, Shape{p.cached, d}, ctx_.device);
            FATHOM_TRY(copy(ctx_, src, self_kv(p.slot, l, which, p.cached)));
          }
      }
      bind(p.slot, windows_of[static_cast<std::size_t>(p.src)]);
    }
    for (auto& p : pending) {
      auto it = windows_.find(windows_of[static_cast<std::size_t>(p.src)]);
      if (it != windows_.end() && --it->second.refs <= 0) windows_.erase(it);
    }
  }
  std::vector<int> lengths(static_cast<std::size_t>(R));
  std::vector<int32_t> ids, positions;
  for (int i = 0; i < R; ++i) {
    const DecodeRow& r = rows[static_cast<std::size_t>(i)];
    slots_[static_cast<std::size_t>(r.slot)].length = r.cached;
    lengths[static_cast<std::size_t>(i)] = static_cast<int>(r.tokens.size()) - r.cached;
    for (int p = r.cached; p < static_cast<int>(r.tokens.size()); ++p) {
      ids.push_back(r.tokens[static_cast<std::size_t>(p)]);
      positions.push_back(p);
    }
  }
  const int64_t N = static_cast<int64_t>(ids.size());
  ops::VarlenBatch vb = ops::VarlenBatch::from_lengths(lengths);
  // Token inputs on the device.
  FATHOM_ASSIGN_OR_RETURN(Buffer idbuf, Buffer::allocate(*ctx_.allocator, 2 * N * sizeof(int32_t), ctx_.account));
  FATHOM_TRY(ctx_.allocator->copy_from_host(idbuf.data(), ids.data(), N * sizeof(int32_t)));
  FATHOM_TRY(ctx_.allocator->copy_from_host(idbuf.as<int32_t>() + N, positions.data(), N * sizeof(int32_t)));
  TensorView idv(idbuf.data(), DType::kI32, Shape{N}, ctx_.device);
  TensorView posv(idbuf.as<int32_t>() + N, DType::kI32, Shape{N}, ctx_.device);

  const int64_t ffn = cfg_.decoder_ffn_dim;
  FATHOM_ASSIGN_OR_RETURN(Buffer x, alloc(static_cast<std::size_t>(N * d)));
  FATHOM_ASSIGN_OR_RETURN(Buffer h, alloc(static_cast<std::size_t>(N * d)));
  FATHOM_ASSIGN_OR_RETURN(Buffer q, alloc(static_cast<std::size_t>(N * d)));
  FATHOM_ASSIGN_OR_RETURN(Buffer a, alloc(static_cast<std::size_t>(N * std::max<int64_t>(d, ffn))));
  TensorView xv = x.view(DType::kF32, Shape{N, d}), hv = h.view(DType::kF32, Shape{N, d});
  TensorView qv = q.view(DType::kF32, Shape{N, d}), av = a.view(DType::kF32, Shape{N, d});
  TensorView fv = a.view(DType::kF32, Shape{N, ffn});
  ops::EmbeddingTables tables{w_->embed_tokens, &w_->decoder_positions, nullptr};
  FATHOM_TRY(ops::embed_tokens(ctx_, idv, &posv, nullptr, tables, xv));

  const int heads = cfg_.decoder_attention_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim_));
  const auto mode = gelu_mode(cfg_.activation_function);
  std::vector<TensorView> keys(static_cast<std::size_t>(R)), values(static_cast<std::size_t>(R));
  for (int l = 0; l < layers; ++l) {
    const auto& L = w_->decoder_layers[static_cast<std::size_t>(l)];
    // Causal self-attention over the slot caches.
    FATHOM_TRY(ops::layer_norm(ctx_, xv, nullptr, L.self_norm.gamma, L.self_norm.beta, kLayerNormEps, hv));
    FATHOM_TRY(linear(ctx_, hv, L.self_q, qv));
    for (int which = 0; which < 2; ++which) {
      FATHOM_TRY(linear(ctx_, hv, which == 0 ? L.self_k : L.self_v, av));
      for (int i = 0; i < R; ++i) {
        const DecodeRow& r = rows[static_cast<std::size_t>(i)];
        const int n = lengths[static_cast<std::size_t>(i)];
        TensorView dst = self_kv(r.slot, l, which, r.cached + n);
        FATHOM_TRY(copy(ctx_, rows_of(av, vb.cu_seqlens[static_cast<std::size_t>(i)], n), rows_of(dst, r.cached, n)));
        (which == 0 ? keys : values)[static_cast<std::size_t>(i)] = dst;
      }
    }
    FATHOM_TRY(ops::attention_cached(ctx_, qv, vb, keys, values, heads, head_dim_, scale, true, av));
    FATHOM_TRY(linear(ctx_, av, L.self_out, hv));
    FATHOM_TRY(ops::add(ctx_, xv, hv, xv));
    // Cross-attention to the slot's window.
    FATHOM_TRY(ops::layer_norm(ctx_, xv, nullptr, L.cross_norm.gamma, L.cross_norm.beta, kLayerNormEps, hv));
    FATHOM_TRY(linear(ctx_, hv, L.cross_q, qv));
    for (int i = 0; i < R; ++i) {
      const int win = slots_[static_cast<std::size_t>(rows[static_cast<std::size_t>(i)].slot)].window;
      keys[static_cast<std::size_t>(i)] = cross_kv(win, l, 0);
      values[static_cast<std::size_t>(i)] = cross_kv(win, l, 1);
    }
    FATHOM_TRY(ops::attention_cached(ctx_, qv, vb, keys, values, heads, head_dim_, scale, false, av));
    FATHOM_TRY(linear(ctx_, av, L.cross_out, hv));
    FATHOM_TRY(ops::add(ctx_, xv, hv, xv));
    // Feed-forward.
    FATHOM_TRY(ops::layer_norm(ctx_, xv, nullptr, L.ffn_norm.gamma, L.ffn_norm.beta, kLayerNormEps, hv));
    FATHOM_TRY(linear(ctx_, hv, L.fc1, fv));
    FATHOM_TRY(ops::gelu(ctx_, fv, fv, mode));
    FATHOM_TRY(linear(ctx_, fv, L.fc2, hv));
    FATHOM_TRY(ops::add(ctx_, xv, hv, xv));
  }
  for (int i = 0; i < R; ++i) {
    const DecodeRow& r = rows[static_cast<std::size_t>(i)];
    slots_[static_cast<std::size_t>(r.slot)].length = static_cast<int>(r.tokens.size());
  }
  // Last position of each row -> final norm -> logits.
  TensorView last = rows_of(qv, 0, R);  // every row has >= 1 token, so N >= R
  for (int i = 0; i < R; ++i)
    FATHOM_TRY(copy(ctx_, rows_of(xv, vb.cu_seqlens[static_cast<std::size_t>(i) + 1] - 1, 1), rows_of(last, i, 1)));
  FATHOM_TRY(ops::layer_norm(ctx_, last, nullptr, w_->decoder_norm.gamma, w_->decoder_norm.beta, kLayerNormEps, last));
  const int64_t V = cfg_.vocab_size;
  FATHOM_ASSIGN_OR_RETURN(Buffer logits, alloc(static_cast<std::size_t>(R * V)));
  FATHOM_TRY(ops::linear(ctx_, last, w_->lm_head, nullptr, logits.view(DType::kF32, Shape{R, V})));
  std::vector<float> out(static_cast<std::size_t>(R * V));
  FATHOM_TRY(ctx_.allocator->copy_to_host(out.data(), logits.data(), out.size() * sizeof(float)));
  return out;
}

}  // namespace fathom::models::whisper
