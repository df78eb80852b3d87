#include "ops/conv1d.h"

#include "backends/cpu/sequence_kernels.h"
#if FATHOM_WITH_CUDA
#include "backends/cuda/ops_cuda.h"
#endif

namespace fathom::ops {

Status conv1d(ExecContext& ctx, const TensorView& x, Conv1dInput layout, const TensorView& w, const TensorView* bias,
              int stride, int pad, const TensorView& y) {
  constexpr const char* kOp = "conv1d";
  FATHOM_TRY(check_tensor(ctx, x, x.dtype, kOp, "x"));
  FATHOM_TRY(check_tensor(ctx, w, x.dtype, kOp, "w"));
  FATHOM_TRY(check_tensor(ctx, y, x.dtype, kOp, "y"));
  if (x.shape.rank != 2 && x.shape.rank != 3)
    return make_error(ErrorCode::kInvalidArgument, "conv1d: x must be 2-D or 3-D, got " + x.shape.to_string());
  if (w.shape.rank != 3) return make_error(ErrorCode::kInvalidArgument, "conv1d: w must be [C_out, C_in, K], got " + w.shape.to_string());
  if (stride < 1 || pad < 0) return make_error(ErrorCode::kInvalidArgument, "conv1d: stride must be >= 1 and pad >= 0");
  const bool batched = x.shape.rank == 3;
  const int64_t batch = batched ? x.dim(0) : 1;
  const int64_t d0 = x.dim(batched ? 1 : 0), d1 = x.dim(batched ? 2 : 1);
  const int64_t t_in = layout == Conv1dInput::kTimeMajor ? d0 : d1;
  const int64_t c_in = layout == Conv1dInput::kTimeMajor ? d1 : d0;
  const int64_t c_out = w.dim(0);
  const int k = static_cast<int>(w.dim(2));
  if (w.dim(1) != c_in)
    return make_error(ErrorCode::kInvalidArgument, "conv1d: w " + w.shape.to_string() + " expects " +
                                                       std::to_string(w.dim(1)) + " input channels, x has " +
                                                       std::to_string(c_in));
  const int64_t t_out = conv1d_output_length(t_in, k, stride, pad);
  if (t_out < 1) return make_error(ErrorCode::kInvalidArgument, "conv1d: input of " + std::to_string(t_in) + " steps is shorter than the kernel");
  FATHOM_TRY(check_shape(y, batched ? Shape{batch, t_out, c_out} : Shape{t_out, c_out}, kOp, "y"));
  if (bias) {
    FATHOM_TRY(check_tensor(ctx, *bias, x.dtype, kOp, "bias"));
    FATHOM_TRY(check_shape(*bias, Shape{c_out}, kOp, "bias"));
  }
  switch (ctx.device.kind) {
    case DeviceKind::kCpu: {
      if (x.dtype != DType::kF32) return make_error(ErrorCode::kUnsupported, "conv1d on cpu computes in float32 only");
      if (!ctx.workspace) return make_error(ErrorCode::kInvalidArgument, "conv1d: ExecContext has no workspace");
      FATHOM_ASSIGN_OR_RETURN(void* scratch, ctx.workspace->get(static_cast<std::size_t>(t_out * c_in * k) * sizeof(float)));
      const int64_t ts = layout == Conv1dInput::kTimeMajor ? c_in : 1;
      const int64_t cs = layout == Conv1dInput::kTimeMajor ? 1 : t_in;
      for (int64_t b = 0; b < batch; ++b)
        cpu::conv1d(x.ptr<float>() + b * t_in * c_in, t_in, c_in, ts, cs, w.ptr<float>(),
                    bias ? bias->ptr<float>() : nullptr, c_out, k, stride, pad, y.ptr<float>() + b * t_out * c_out,
                    t_out, static_cast<float*>(scratch));
      return Status::Ok();
    }
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      if (!compute_supported(DeviceKind::kCuda, x.dtype))
        return make_error(ErrorCode::kUnsupported, "conv1d on cuda: dtype " + std::string(dtype_name(x.dtype)) +
                                                       " is not supported (float32, float16, bfloat16)");
      return cuda::ops::conv1d(ctx, x, layout == Conv1dInput::kChannelMajor, w, bias, stride, pad, y);
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

}  // namespace fathom::ops
