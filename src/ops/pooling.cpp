#include "ops/pooling.h"

#include "backends/cpu/kernels.h"
#if FATHOM_WITH_CUDA
#include "backends/cuda/ops_cuda.h"
#endif

namespace fathom::ops {

const char* pooling_mode_name(PoolingMode mode) {
  switch (mode) {
    case PoolingMode::kCls: return "cls";
    case PoolingMode::kMean: return "mean";
    case PoolingMode::kMax: return "max";
    case PoolingMode::kLastToken: return "lasttoken";
  }
  return "mean";
}

std::optional<PoolingMode> parse_pooling_mode(std::string_view name) {
  if (name == "cls") return PoolingMode::kCls;
  if (name == "mean") return PoolingMode::kMean;
  if (name == "max") return PoolingMode::kMax;
  if (name == "lasttoken" || name == "last_token") return PoolingMode::kLastToken;
  return std::nullopt;
}

Status pool(ExecContext& ctx, const TensorView& hidden, const VarlenBatch& batch, PoolingMode mode,
            const TensorView& out) {
  constexpr const char* kOp = "pool";
  FATHOM_TRY(batch.validate());
  FATHOM_TRY(check_tensor(ctx, hidden, hidden.dtype, kOp, "hidden"));
  FATHOM_TRY(check_tensor(ctx, out, hidden.dtype, kOp, "out"));
  FATHOM_TRY(check_matrix(hidden, batch.total(), hidden.cols(), kOp, "hidden"));
  FATHOM_TRY(check_shape(out, Shape{batch.batch(), hidden.cols()}, kOp, "out"));
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      if (hidden.dtype != DType::kF32) return make_error(ErrorCode::kUnsupported, "pool on cpu computes in float32 only");
      cpu::pool(hidden.ptr<float>(), batch.cu_seqlens.data(), batch.batch(), hidden.cols(),
                static_cast<cpu::Pool>(static_cast<int>(mode)), out.ptr<float>());
      return Status::Ok();
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return cuda::ops::pool(ctx, hidden, batch.cu_seqlens.data(), batch.batch(), batch.cuda_desc, batch.cuda_max_seqs,
                             static_cast<int>(mode), out);
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

}  // namespace fathom::ops
