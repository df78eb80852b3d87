#include "ops/attention_cached.h"

#include <algorithm>
#include <cstddef>

#include "backends/cpu/sequence_kernels.h"
#if FATHOM_WITH_CUDA
#include "backends/cuda/ops_cuda.h"
#include "backends/cuda/sequence_kernels.h"
#endif

namespace fathom::ops {

#if FATHOM_WITH_CUDA
namespace {

Status cuda_dtype_supported(const TensorView& q) {
  if (compute_supported(DeviceKind::kCuda, q.dtype)) return Status::Ok();
  return make_error(ErrorCode::kUnsupported, "attention_cached on cuda: dtype " + std::string(dtype_name(q.dtype)) +
                                                 " is not supported (float32, float16, bfloat16)");
}

}  // namespace
#endif

#if FATHOM_WITH_CUDA
// The prepared descriptor is handed to the CUDA kernel as is.
static_assert(sizeof(CachedSeq) == sizeof(cuda::CachedAttnSeq) && offsetof(CachedSeq, k) == offsetof(cuda::CachedAttnSeq, k) &&
              offsetof(CachedSeq, v) == offsetof(cuda::CachedAttnSeq, v) &&
              offsetof(CachedSeq, kv_len) == offsetof(cuda::CachedAttnSeq, kv_len) &&
              offsetof(CachedSeq, q_start) == offsetof(cuda::CachedAttnSeq, q_start) &&
              offsetof(CachedSeq, q_len) == offsetof(cuda::CachedAttnSeq, q_len));
#endif

Status attention_cached(ExecContext& ctx, const TensorView& q, const VarlenBatch& queries,
                        const std::vector<TensorView>& keys, const std::vector<TensorView>& values, int heads,
                        int head_dim, float scale, bool causal, const TensorView& out) {
  constexpr const char* kOp = "attention_cached";
  if (heads <= 0 || head_dim <= 0)
    return make_error(ErrorCode::kInvalidArgument, "attention_cached: heads and head_dim must be positive");
  FATHOM_TRY(queries.validate());
  const int batch = queries.batch();
  if (static_cast<int>(keys.size()) != batch || static_cast<int>(values.size()) != batch)
    return make_error(ErrorCode::kInvalidArgument, "attention_cached: need one key and one value tensor per sequence (" +
                                                       std::to_string(batch) + "), got " + std::to_string(keys.size()) +
                                                       " and " + std::to_string(values.size()));
  const int64_t hidden = static_cast<int64_t>(heads) * head_dim;
  FATHOM_TRY(check_tensor(ctx, q, q.dtype, kOp, "q"));
  FATHOM_TRY(check_tensor(ctx, out, q.dtype, kOp, "out"));
  FATHOM_TRY(check_matrix(q, queries.total(), hidden, kOp, "q"));
  FATHOM_TRY(check_matrix(out, queries.total(), hidden, kOp, "out"));
  int64_t stride = -1;
  std::vector<const float*> kp(static_cast<std::size_t>(batch)), vp(static_cast<std::size_t>(batch));
  std::vector<int32_t> lens(static_cast<std::size_t>(batch));
  for (int b = 0; b < batch; ++b) {
    const TensorView& k = keys[static_cast<std::size_t>(b)];
    const TensorView& v = values[static_cast<std::size_t>(b)];
    FATHOM_TRY(check_tensor(ctx, k, q.dtype, kOp, "keys"));
    FATHOM_TRY(check_tensor(ctx, v, q.dtype, kOp, "values"));
    if (k.cols() < hidden || v.cols() != k.cols() || v.rows() != k.rows())
      return make_error(ErrorCode::kInvalidArgument, "attention_cached: sequence " + std::to_string(b) + " keys " +
                                                         k.shape.to_string() + " / values " + v.shape.to_string() +
                                                         " do not match each other or hold fewer than " +
                                                         std::to_string(hidden) + " columns");
    if (stride >= 0 && k.cols() != stride)
      return make_error(ErrorCode::kInvalidArgument, "attention_cached: every key tensor must have the same row length");
    stride = k.cols();
    const int64_t n = queries.cu_seqlens[static_cast<std::size_t>(b) + 1] - queries.cu_seqlens[static_cast<std::size_t>(b)];
    if (causal && k.rows() < n)
      return make_error(ErrorCode::kInvalidArgument, "attention_cached: sequence " + std::to_string(b) + " has " +
                                                         std::to_string(n) + " queries but only " +
                                                         std::to_string(k.rows()) + " keys");
    kp[static_cast<std::size_t>(b)] = k.ptr<float>();
    vp[static_cast<std::size_t>(b)] = v.ptr<float>();
    lens[static_cast<std::size_t>(b)] = static_cast<int32_t>(k.rows());
  }
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      if (q.dtype != DType::kF32) return make_error(ErrorCode::kUnsupported, "attention_cached on cpu computes in float32 only");
      if (queries.total() == 0) return Status::Ok();
      cpu::attention_cached(q.ptr<float>(), queries.cu_seqlens.data(), batch, kp.data(), vp.data(), lens.data(), stride,
                            heads, head_dim, scale, causal, out.ptr<float>());
      return Status::Ok();
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      FATHOM_TRY(cuda_dtype_supported(q));
      return cuda::ops::attention_cached(ctx, q, queries.cu_seqlens.data(), batch, keys.data(), values.data(), heads,
                                         head_dim, scale, causal, out);
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

std::size_t attention_cached_scratch_bytes(const ExecContext& ctx, const CachedAttentionBounds& bounds, int heads,
                                           int head_dim) {
#if FATHOM_WITH_CUDA
  if (ctx.device.kind == DeviceKind::kCuda)
    return cuda::ops::attention_cached_prepared_scratch(ctx, bounds.num_seqs, bounds.rows, bounds.max_q_len,
                                                        bounds.max_kv_len, heads, head_dim);
#endif
  (void)ctx;
  (void)bounds;
  (void)heads;
  (void)head_dim;
  return 0;
}

Status attention_cached_prepared(ExecContext& ctx, const TensorView& q, const CachedSeq* seqs,
                                 const CachedAttentionBounds& bounds, int heads, int head_dim, float scale, bool causal,
                                 void* scratch, const TensorView& out) {
  constexpr const char* kOp = "attention_cached_prepared";
  if (heads <= 0 || head_dim <= 0)
    return make_error(ErrorCode::kInvalidArgument, "attention_cached_prepared: heads and head_dim must be positive");
  if (bounds.num_seqs < 0 || bounds.rows < 0 || bounds.max_q_len < 0 || bounds.max_kv_len < 0 ||
      bounds.ld_kv < static_cast<int64_t>(heads) * head_dim)
    return make_error(ErrorCode::kInvalidArgument, "attention_cached_prepared: negative bound or key row stride " +
                                                       std::to_string(bounds.ld_kv) + " below heads * head_dim");
  if (bounds.num_seqs > 0 && !seqs)
    return make_error(ErrorCode::kInvalidArgument, "attention_cached_prepared: null descriptor");
  const int64_t hidden = static_cast<int64_t>(heads) * head_dim;
  FATHOM_TRY(check_tensor(ctx, q, q.dtype, kOp, "q"));
  FATHOM_TRY(check_tensor(ctx, out, q.dtype, kOp, "out"));
  FATHOM_TRY(check_matrix(q, bounds.rows, hidden, kOp, "q"));
  FATHOM_TRY(check_matrix(out, bounds.rows, hidden, kOp, "out"));
  switch (ctx.device.kind) {
    case DeviceKind::kCpu: {
      if (q.dtype != DType::kF32) return make_error(ErrorCode::kUnsupported, "attention_cached on cpu computes in float32 only");
      // Host memory: validate every entry, then one sequence at a time through the CPU kernel.
      for (int b = 0; b < bounds.num_seqs; ++b) {
        const CachedSeq& s = seqs[b];
        if (s.q_len < 0 || s.q_len > bounds.max_q_len || s.q_start < 0 || s.q_start + s.q_len > bounds.rows ||
            s.kv_len < 0 || (s.kv_len > 0 && (!s.k || !s.v)))
          return make_error(ErrorCode::kInvalidArgument, "attention_cached_prepared: sequence " + std::to_string(b) +
                                                             " is outside the bounds");
        if (s.q_len == 0) continue;
        float* o = out.ptr<float>() + static_cast<int64_t>(s.q_start) * hidden;
        const int kv = std::min(s.kv_len, bounds.max_kv_len);
        if (kv == 0 || (causal && kv < s.q_len)) {
          // No key visible to (some) queries: zeros, as the CUDA kernel writes.
          if (kv == 0) {
            std::fill(o, o + static_cast<int64_t>(s.q_len) * hidden, 0.0f);
            continue;
          }
          return make_error(ErrorCode::kInvalidArgument, "attention_cached_prepared: sequence " + std::to_string(b) +
                                                             " has fewer keys than causal queries");
        }
        const int32_t cu[2] = {0, s.q_len};
        const float* kp = static_cast<const float*>(s.k);
        const float* vp = static_cast<const float*>(s.v);
        const int32_t len = kv;
        cpu::attention_cached(q.ptr<float>() + static_cast<int64_t>(s.q_start) * hidden, cu, 1, &kp, &vp, &len,
                              bounds.ld_kv, heads, head_dim, scale, causal, o);
      }
      (void)scratch;
      return Status::Ok();
    }
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      FATHOM_TRY(cuda_dtype_supported(q));
      return cuda::ops::attention_cached_prepared(ctx, q, seqs, bounds.num_seqs, bounds.rows, bounds.max_q_len,
                                                  bounds.max_kv_len, bounds.ld_kv, bounds.kv_aligned, heads, head_dim,
                                                  scale, causal, scratch, out);
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

}  // namespace fathom::ops
