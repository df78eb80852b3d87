#include "ops/gemm.h"

#include <string>

#include "backends/cpu/gemm.h"
#include "backends/cpu/kernels.h"
#if FATHOM_WITH_CUDA
#include "backends/cuda/ops_cuda.h"
#endif

namespace fathom::ops {

namespace {

Status check_linear(ExecContext& ctx, const TensorView& x, const TensorView& w, const TensorView* bias,
                    const TensorView& y, const char* op) {
  FATHOM_TRY(check_tensor(ctx, x, x.dtype, op, "x"));
  FATHOM_TRY(check_tensor(ctx, w, x.dtype, op, "w"));
  FATHOM_TRY(check_tensor(ctx, y, x.dtype, op, "y"));
  if (w.shape.rank != 2)
    return make_error(ErrorCode::kInvalidArgument, std::string(op) + ": `w` must be 2-D, got " + w.shape.to_string());
  const int64_t n = w.dim(0), k = w.dim(1), m = x.rows();
  FATHOM_TRY(check_matrix(x, -1, k, op, "x"));
  FATHOM_TRY(check_matrix(y, m, n, op, "y"));
  if (bias) {
    FATHOM_TRY(check_tensor(ctx, *bias, x.dtype, op, "bias"));
    FATHOM_TRY(check_shape(*bias, Shape{n}, op, "bias"));
  }
  if (ctx.device.kind == DeviceKind::kCpu && x.dtype != DType::kF32)
    return make_error(ErrorCode::kUnsupported, std::string(op) + " on cpu computes in float32 only");
  return Status::Ok();
}

void cpu_linear(const TensorView& x, const TensorView& w, const TensorView* bias, const TensorView& y) {
  const int m = static_cast<int>(x.rows()), n = static_cast<int>(w.dim(0)), k = static_cast<int>(w.dim(1));
  cpu::sgemm(false, true, m, n, k, 1.0f, x.ptr<float>(), k, w.ptr<float>(), k, 0.0f, y.ptr<float>(), n);
  if (bias) cpu::bias_add(y.ptr<float>(), bias->ptr<float>(), m, n);
}

}  // namespace

Status linear(ExecContext& ctx, const TensorView& x, const TensorView& w, const TensorView* bias, const TensorView& y) {
  FATHOM_TRY(check_linear(ctx, x, w, bias, y, "linear"));
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      cpu_linear(x, w, bias, y);
      return Status::Ok();
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return cuda::ops::linear(ctx, x, w, bias, y);
#endif
    default:
      return unsupported_device(ctx, "linear");
  }
}

Status linear_gelu(ExecContext& ctx, const TensorView& x, const TensorView& w, const TensorView* bias,
                   const TensorView& y, GeluMode mode) {
  FATHOM_TRY(check_linear(ctx, x, w, bias, y, "linear_gelu"));
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      cpu_linear(x, w, bias, y);
      return gelu(ctx, y, y, mode);
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return cuda::ops::linear_gelu(ctx, x, w, bias, y, mode == GeluMode::kTanh);
#endif
    default:
      return unsupported_device(ctx, "linear_gelu");
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
