#include "ops/convert.h"

#include "backends/cpu/kernels.h"
#if FATHOM_WITH_CUDA
#include "backends/cuda/ops_cuda.h"
#endif

namespace fathom::ops {

Status convert(ExecContext& ctx, const TensorView& src, const TensorView& dst) {
  constexpr const char* kOp = "convert";
  FATHOM_TRY(check_tensor(ctx, src, src.dtype, kOp, "src"));
  FATHOM_TRY(check_tensor(ctx, dst, dst.dtype, kOp, "dst"));
  if (!is_float(src.dtype) || !is_float(dst.dtype))
    return make_error(ErrorCode::kUnsupported, "convert: only float32/float16/bfloat16 are supported, got " +
                                                   std::string(dtype_name(src.dtype)) + " -> " +
                                                   std::string(dtype_name(dst.dtype)));
  if (src.numel() != dst.numel())
    return make_error(ErrorCode::kInvalidArgument, "convert: element counts differ: " + src.shape.to_string() + " vs " +
                                                       dst.shape.to_string());
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      cpu::convert(src.data, src.dtype, dst.data, dst.dtype, src.numel());
      return Status::Ok();
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return cuda::ops::convert(ctx, src, dst);
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

}  // namespace fathom::ops
