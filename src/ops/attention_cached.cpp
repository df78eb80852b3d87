#include "ops/attention_cached.h"

#include "backends/cpu/sequence_kernels.h"
#if FATHOM_WITH_CUDA
#include "backends/cuda/ops_cuda.h"
#endif

namespace fathom::ops {

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
      if (!compute_supported(DeviceKind::kCuda, q.dtype))
        return make_error(ErrorCode::kUnsupported, "attention_cached on cuda: dtype " + std::string(dtype_name(q.dtype)) +
                                                       " is not supported (float32, float16, bfloat16)");
      return cuda::ops::attention_cached(ctx, q, queries.cu_seqlens.data(), batch, keys.data(), values.data(), heads,
                                         head_dim, scale, causal, out);
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

}  // namespace fathom::ops
