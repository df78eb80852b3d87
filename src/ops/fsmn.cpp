#include "ops/fsmn.h"

#include "backends/cpu/sanm_kernels.h"
#if FATHOM_WITH_CUDA
#include "backends/cuda/sanm_kernels.h"
#endif

namespace fathom::ops {

Status fsmn_memory(ExecContext& ctx, const TensorView& src, int64_t column, const TensorView& weight, int left_pad,
                   const VarlenBatch& batch, const TensorView& out) {
  constexpr const char* kOp = "fsmn_memory";
  FATHOM_TRY(batch.validate());
  FATHOM_TRY(check_tensor(ctx, src, src.dtype, kOp, "src"));
  FATHOM_TRY(check_tensor(ctx, out, src.dtype, kOp, "out"));
  FATHOM_TRY(check_tensor(ctx, weight, src.dtype, kOp, "weight"));
  const int64_t d = out.cols();
  FATHOM_TRY(check_matrix(out, batch.total(), d, kOp, "out"));
  if (src.rows() != batch.total() || column < 0 || src.cols() < column + d)
    return make_error(ErrorCode::kInvalidArgument, "fsmn_memory: src " + src.shape.to_string() + " does not hold " +
                                                       std::to_string(batch.total()) + " rows of columns [" +
                                                       std::to_string(column) + ", " + std::to_string(column + d) + ")");
  if (weight.shape.rank != 3 || weight.dim(0) != d || weight.dim(1) != 1 || weight.dim(2) <= 0)
    return make_error(ErrorCode::kInvalidArgument, "fsmn_memory: weight " + weight.shape.to_string() + ", expected [" +
                                                       std::to_string(d) + ", 1, K]");
  const int K = static_cast<int>(weight.dim(2));
  if (left_pad < 0 || left_pad >= K)
    return make_error(ErrorCode::kInvalidArgument, "fsmn_memory: left_pad must be in [0, kernel)");
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      if (src.dtype != DType::kF32) return make_error(ErrorCode::kUnsupported, "fsmn_memory on cpu computes in float32 only");
      if (batch.total() == 0) return Status::Ok();
      cpu::fsmn_memory(src.ptr<float>(), src.cols(), column, weight.ptr<float>(), K, left_pad, batch.cu_seqlens.data(),
                       batch.batch(), d, out.ptr<float>());
      return Status::Ok();
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      if (!batch.cu_seqlens_device.data)
        return make_error(ErrorCode::kInvalidArgument, "fsmn_memory on cuda needs the batch's cu_seqlens_device");
      return status_from_exceptions([&] {
        cuda::FsmnParams p;
        p.dtype = src.dtype;
        p.src = src.data;
        p.ld = src.cols();
        p.column = column;
        p.w = weight.data;
        p.kernel = K;
        p.left_pad = left_pad;
        p.cu = batch.cu_seqlens_device.ptr<int32_t>();
        p.batch = batch.batch();
        p.total = batch.total();
        p.d = static_cast<int>(d);
        p.out = out.data;
        cuda::fsmn_memory(p, static_cast<cudaStream_t>(ctx.stream));
      });
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

}  // namespace fathom::ops
