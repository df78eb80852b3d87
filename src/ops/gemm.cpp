#include "ops/gemm.h"

#include "backends/cpu/gemm.h"
#include "backends/cpu/kernels.h"
#if FATHOM_WITH_CUDA
#include "backends/cuda/ops_cuda.h"
#endif

namespace fathom::ops {

Status linear(ExecContext& ctx, const TensorView& x, const TensorView& w, const TensorView* bias, const TensorView& y) {
  constexpr const char* kOp = "linear";
  FATHOM_TRY(check_tensor(ctx, x, x.dtype, kOp, "x"));
  FATHOM_TRY(check_tensor(ctx, w, x.dtype, kOp, "w"));
  FATHOM_TRY(check_tensor(ctx, y, x.dtype, kOp, "y"));
  if (w.shape.rank != 2) return make_error(ErrorCode::kInvalidArgument, "linear: `w` must be 2-D, got " + w.shape.to_string());
  const int64_t n = w.dim(0), k = w.dim(1), m = x.rows();
  FATHOM_TRY(check_matrix(x, -1, k, kOp, "x"));
  FATHOM_TRY(check_matrix(y, m, n, kOp, "y"));
  if (bias) {
    FATHOM_TRY(check_tensor(ctx, *bias, x.dtype, kOp, "bias"));
    FATHOM_TRY(check_shape(*bias, Shape{n}, kOp, "bias"));
  }
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      if (x.dtype != DType::kF32) return make_error(ErrorCode::kUnsupported, "linear on cpu computes in float32 only");
      cpu::sgemm(false, true, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), 1.0f, x.ptr<float>(),
                 static_cast<int>(k), w.ptr<float>(), static_cast<int>(k), 0.0f, y.ptr<float>(), static_cast<int>(n));
      if (bias) cpu::bias_add(y.ptr<float>(), bias->ptr<float>(), m, n);
      return Status::Ok();
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return cuda::ops::linear(ctx, x, w, bias, y);
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

Status matmul(ExecContext& ctx, const TensorView& a, bool trans_a, const TensorView& b, bool trans_b,
              const TensorView& c, float alpha, float beta) {
  constexpr const char* kOp = "matmul";
  FATHOM_TRY(check_tensor(ctx, a, a.dtype, kOp, "a"));
  FATHOM_TRY(check_tensor(ctx, b, a.dtype, kOp, "b"));
  FATHOM_TRY(check_tensor(ctx, c, a.dtype, kOp, "c"));
  if (a.shape.rank != 2 || b.shape.rank != 2 || c.shape.rank != 2)
    return make_error(ErrorCode::kInvalidArgument, "matmul: a, b and c must be 2-D");
  const int64_t m = trans_a ? a.dim(1) : a.dim(0), k = trans_a ? a.dim(0) : a.dim(1);
  const int64_t kb = trans_b ? b.dim(1) : b.dim(0), n = trans_b ? b.dim(0) : b.dim(1);
  if (k != kb)
    return make_error(ErrorCode::kInvalidArgument, "matmul: inner dimensions differ: " + a.shape.to_string() + " and " +
                                                       b.shape.to_string());
  FATHOM_TRY(check_shape(c, Shape{m, n}, kOp, "c"));
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      if (a.dtype != DType::kF32) return make_error(ErrorCode::kUnsupported, "matmul on cpu computes in float32 only");
      cpu::sgemm(trans_a, trans_b, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a.ptr<float>(),
                 static_cast<int>(a.dim(1)), b.ptr<float>(), static_cast<int>(b.dim(1)), beta, c.ptr<float>(),
                 static_cast<int>(n));
      return Status::Ok();
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return cuda::ops::matmul(ctx, a, trans_a, b, trans_b, c, alpha, beta);
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

}  // namespace fathom::ops
