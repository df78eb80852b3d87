#include "ops/norm.h"

#include "backends/cpu/decoder_kernels.h"
#include "backends/cpu/kernels.h"
#if FATHOM_WITH_CUDA
#include "backends/cuda/decoder_kernels.h"
#include "backends/cuda/ops_cuda.h"
#endif

namespace fathom::ops {

Status layer_norm(ExecContext& ctx, const TensorView& x, const TensorView* residual, const TensorView& gamma,
                  const TensorView& beta, float eps, const TensorView& out) {
  constexpr const char* kOp = "layer_norm";
  FATHOM_TRY(check_tensor(ctx, x, x.dtype, kOp, "x"));
  FATHOM_TRY(check_tensor(ctx, out, x.dtype, kOp, "out"));
  FATHOM_TRY(check_shape(out, x.shape, kOp, "out"));
  FATHOM_TRY(check_tensor(ctx, gamma, x.dtype, kOp, "gamma"));
  FATHOM_TRY(check_tensor(ctx, beta, x.dtype, kOp, "beta"));
  FATHOM_TRY(check_shape(gamma, Shape{x.cols()}, kOp, "gamma"));
  FATHOM_TRY(check_shape(beta, Shape{x.cols()}, kOp, "beta"));
  if (residual) {
    FATHOM_TRY(check_tensor(ctx, *residual, x.dtype, kOp, "residual"));
    FATHOM_TRY(check_shape(*residual, x.shape, kOp, "residual"));
  }
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      if (x.dtype != DType::kF32) return make_error(ErrorCode::kUnsupported, "layer_norm on cpu computes in float32 only");
      cpu::layer_norm(x.ptr<float>(), residual ? residual->ptr<float>() : nullptr, gamma.ptr<float>(), beta.ptr<float>(),
                      eps, out.ptr<float>(), x.rows(), x.cols());
      return Status::Ok();
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return cuda::ops::layer_norm(ctx, x, residual, gamma, beta, eps, out);
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

Status rms_norm(ExecContext& ctx, const TensorView& x, const TensorView& weight, float eps, const TensorView& out) {
  constexpr const char* kOp = "rms_norm";
  FATHOM_TRY(check_tensor(ctx, x, x.dtype, kOp, "x"));
  FATHOM_TRY(check_tensor(ctx, out, x.dtype, kOp, "out"));
  FATHOM_TRY(check_shape(out, x.shape, kOp, "out"));
  FATHOM_TRY(check_tensor(ctx, weight, x.dtype, kOp, "weight"));
  FATHOM_TRY(check_shape(weight, Shape{x.cols()}, kOp, "weight"));
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      if (x.dtype != DType::kF32) return make_error(ErrorCode::kUnsupported, "rms_norm on cpu computes in float32 only");
      cpu::rms_norm(x.ptr<float>(), weight.ptr<float>(), eps, out.ptr<float>(), x.rows(), x.cols());
      return Status::Ok();
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return status_from_exceptions([&] {
        cuda::rms_norm(x.dtype, x.data, weight.data, eps, out.data, static_cast<int>(x.rows()), static_cast<int>(x.cols()),
                       static_cast<cudaStream_t>(ctx.stream));
      });
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

Status l2_normalize(ExecContext& ctx, const TensorView& x, const TensorView& out, float eps) {
  constexpr const char* kOp = "l2_normalize";
  FATHOM_TRY(check_tensor(ctx, x, x.dtype, kOp, "x"));
  FATHOM_TRY(check_tensor(ctx, out, x.dtype, kOp, "out"));
  FATHOM_TRY(check_shape(out, x.shape, kOp, "out"));
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      if (x.dtype != DType::kF32) return make_error(ErrorCode::kUnsupported, "l2_normalize on cpu computes in float32 only");
      cpu::l2_normalize_rows(x.ptr<float>(), out.ptr<float>(), x.rows(), x.cols(), eps);
      return Status::Ok();
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return cuda::ops::l2_normalize(ctx, x, out, eps);
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

}  // namespace fathom::ops
