#include "ops/rotary.h"

#include "backends/cpu/encoder_kernels.h"
#if FATHOM_WITH_CUDA
#include "backends/cuda/ops_cuda.h"
#endif

namespace fathom::ops {

Status rotary_qk(ExecContext& ctx, const TensorView& qkv, const TensorView& positions, int heads, int head_dim,
                 int rotary_dim, const TensorView& inv_freq) {
  constexpr const char* kOp = "rotary_qk";
  if (heads <= 0 || head_dim <= 0 || rotary_dim < 2 || rotary_dim > head_dim || rotary_dim % 2 != 0)
    return make_error(ErrorCode::kInvalidArgument, "rotary_qk: need heads, head_dim > 0 and an even rotary_dim in [2, " +
                                                       std::to_string(head_dim) + "], got " + std::to_string(rotary_dim));
  const int64_t tokens = positions.numel();
  FATHOM_TRY(check_tensor(ctx, qkv, qkv.dtype, kOp, "qkv"));
  FATHOM_TRY(check_matrix(qkv, tokens, 3 * static_cast<int64_t>(heads) * head_dim, kOp, "qkv"));
  FATHOM_TRY(check_tensor(ctx, positions, DType::kI32, kOp, "positions"));
  FATHOM_TRY(check_tensor(ctx, inv_freq, DType::kF32, kOp, "inv_freq"));
  FATHOM_TRY(check_shape(inv_freq, Shape{rotary_dim / 2}, kOp, "inv_freq"));
  if (tokens == 0) return Status::Ok();
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      if (qkv.dtype != DType::kF32) return make_error(ErrorCode::kUnsupported, "rotary_qk on cpu computes in float32 only");
      cpu::rotary_qk(qkv.ptr<float>(), positions.ptr<int32_t>(), tokens, heads, head_dim, rotary_dim,
                     inv_freq.ptr<float>());
      return Status::Ok();
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return cuda::ops::rotary_qk(ctx, qkv, positions, heads, head_dim, rotary_dim, inv_freq);
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

}  // namespace fathom::ops
