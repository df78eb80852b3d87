#include "ops/rows.h"

#include <algorithm>
#include <cstring>

#if FATHOM_WITH_CUDA
#include "backends/cuda/decoder_kernels.h"
#include "backends/cuda/mel/log_mel.h"
#include "backends/cuda/rows/scatter_rows.h"
#endif

namespace fathom::ops {
namespace {

#if FATHOM_WITH_CUDA
Status cuda_status(int code, const char* op) {
  if (code == 0) return Status::Ok();
  if (code < 0) return make_error(ErrorCode::kInvalidArgument, std::string(op) + ": invalid launch parameters");
  return make_error(ErrorCode::kInternal, std::string(op) + ": CUDA error " + std::to_string(code));
}
#endif

}  // namespace

Status scatter_rows(ExecContext& ctx, const TensorView& src, const TensorView& dst) {
  constexpr const char* kOp = "scatter_rows";
  FATHOM_TRY(check_tensor(ctx, src, src.dtype, kOp, "src"));
  FATHOM_TRY(check_tensor(ctx, dst, DType::kI64, kOp, "dst"));
  FATHOM_TRY(check_shape(dst, Shape{src.rows()}, kOp, "dst"));
  const int64_t rows = src.rows();
  const int64_t row_bytes = src.cols() * static_cast<int64_t>(dtype_size(src.dtype));
  switch (ctx.device.kind) {
    case DeviceKind::kCpu: {
      const auto* s = static_cast<const unsigned char*>(src.data);
      const auto* d = dst.ptr<int64_t>();
      for (int64_t r = 0; r < rows; ++r)
        std::memcpy(reinterpret_cast<void*>(static_cast<intptr_t>(d[r])), s + r * row_bytes,
                    static_cast<std::size_t>(row_bytes));
      return Status::Ok();
    }
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda: {
      if (rows == 0 || row_bytes == 0) return Status::Ok();
      cuda::ScatterRowsParams p;
      p.src = src.data;
      p.dst = dst.ptr<int64_t>();
      p.rows = rows;
      p.row_bytes = row_bytes;
      return cuda_status(cuda::launch_scatter_rows(p, ctx.stream), kOp);
    }
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

Status argmax_rows(ExecContext& ctx, const TensorView& x, const TensorView& out) {
  constexpr const char* kOp = "argmax_rows";
  FATHOM_TRY(check_tensor(ctx, x, DType::kF32, kOp, "x"));
  FATHOM_TRY(check_tensor(ctx, out, DType::kI32, kOp, "out"));
  FATHOM_TRY(check_shape(out, Shape{x.rows()}, kOp, "out"));
  const int64_t rows = x.rows(), cols = x.cols();
  if (cols <= 0 || cols > INT32_MAX || rows > INT32_MAX)
    return make_error(ErrorCode::kInvalidArgument, "argmax_rows: x " + x.shape.to_string() + " needs 1 to 2^31-1 columns");
  switch (ctx.device.kind) {
    case DeviceKind::kCpu: {
      const float* v = x.ptr<float>();
      int32_t* o = out.ptr<int32_t>();
      for (int64_t r = 0; r < rows; ++r)
        o[r] = static_cast<int32_t>(std::max_element(v + r * cols, v + (r + 1) * cols) - (v + r * cols));
      return Status::Ok();
    }
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return status_from_exceptions([&] {
        cuda::argmax_rows(x.ptr<float>(), out.ptr<int32_t>(), static_cast<int>(rows), static_cast<int>(cols),
                          static_cast<cudaStream_t>(ctx.stream));
      });
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

Status whisper_log_mel(ExecContext& ctx, const TensorView& samples, int64_t n_valid, const TensorView& filters,
                       const TensorView& out) {
  constexpr const char* kOp = "whisper_log_mel";
  FATHOM_TRY(check_tensor(ctx, samples, DType::kF32, kOp, "samples"));
  FATHOM_TRY(check_tensor(ctx, filters, DType::kF32, kOp, "filters"));
  FATHOM_TRY(check_tensor(ctx, out, DType::kF32, kOp, "out"));
  const int64_t n_samples = samples.numel();
  if (filters.shape.rank != 2 || filters.dim(1) != 201 || filters.dim(0) < 1 || filters.dim(0) > 256)
    return make_error(ErrorCode::kInvalidArgument, "whisper_log_mel: filters must be [n_mels <= 256, 201], got " +
                                                       filters.shape.to_string());
  if (n_samples < 160 || n_valid < 0 || n_valid > n_samples)
    return make_error(ErrorCode::kInvalidArgument, "whisper_log_mel: need >= 160 samples and 0 <= n_valid <= " +
                                                       std::to_string(n_samples) + ", got n_valid " +
                                                       std::to_string(n_valid));
  FATHOM_TRY(check_shape(out, Shape{filters.dim(0), n_samples / 160}, kOp, "out"));
  switch (ctx.device.kind) {
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda: {
      if (!ctx.workspace) return make_error(ErrorCode::kInvalidArgument, "whisper_log_mel: ExecContext has no workspace");
      FATHOM_ASSIGN_OR_RETURN(void* scratch, ctx.workspace->get(cuda::log_mel_workspace_bytes()));
      cuda::LogMelParams p;
      p.samples = samples.ptr<float>();
      p.n_valid = n_valid;
      p.n_samples = n_samples;
      p.filters = filters.ptr<float>();
      p.n_mels = static_cast<int>(filters.dim(0));
      p.out = out.ptr<float>();
      p.workspace = scratch;
      return cuda_status(cuda::launch_log_mel(p, ctx.stream), kOp);
    }
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

}  // namespace fathom::ops
