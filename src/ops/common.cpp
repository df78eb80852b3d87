#include "ops/common.h"

#if FATHOM_WITH_CUDA
#include "backends/cuda/context.h"
#include "backends/cuda/device.h"
#endif

namespace fathom::ops {

bool compute_supported(DeviceKind kind, DType dtype) {
  switch (kind) {
    case DeviceKind::kCpu: return dtype == DType::kF32;
    case DeviceKind::kCuda: return FATHOM_WITH_CUDA && is_float(dtype);
  }
  return false;
}

Status check_tensor(const ExecContext& ctx, const TensorView& t, DType dtype, const char* op, const char* name) {
  if (t.data == nullptr && t.numel() != 0)
    return make_error(ErrorCode::kInvalidArgument, std::string(op) + ": `" + name + "` has no data");
  if (!(t.device == ctx.device))
    return make_error(ErrorCode::kInvalidArgument, std::string(op) + ": `" + name + "` is on " + t.device.to_string() +
                                                       " but the op runs on " + ctx.device.to_string());
  if (t.dtype != dtype)
    return make_error(ErrorCode::kUnsupported, std::string(op) + ": `" + name + "` is " + std::string(dtype_name(t.dtype)) +
                                                   ", expected " + std::string(dtype_name(dtype)));
  return Status::Ok();
}

Status check_shape(const TensorView& t, const Shape& shape, const char* op, const char* name) {
  if (!(t.shape == shape))
    return make_error(ErrorCode::kInvalidArgument, std::string(op) + ": `" + name + "` has shape " + t.shape.to_string() +
                                                       ", expected " + shape.to_string());
  return Status::Ok();
}

Status check_matrix(const TensorView& t, int64_t rows, int64_t cols, const char* op, const char* name) {
  if (t.shape.rank < 1 || t.cols() != cols || (rows >= 0 && t.rows() != rows)) {
    std::string want = "[" + (rows >= 0 ? std::to_string(rows) : std::string("*")) + ", " + std::to_string(cols) + "]";
    return make_error(ErrorCode::kInvalidArgument,
                      std::string(op) + ": `" + name + "` has shape " + t.shape.to_string() + ", expected " + want);
  }
  return Status::Ok();
}

Status prepare_device(const Device& device) {
  if (device.kind == DeviceKind::kCpu) return Status::Ok();
#if FATHOM_WITH_CUDA
  const int n = cuda::device_count();
  if (device.index < 0 || device.index >= n)
    return make_error(ErrorCode::kUnsupported, "device " + device.to_string() + " does not exist (" +
                                                   std::to_string(n) + " CUDA device(s) visible)");
  register_allocator(device, &cuda::device_allocator(device.index));
  return Status::Ok();
#else
  return make_error(ErrorCode::kUnsupported, device.to_string() + " is not available: built without CUDA");
#endif
}

Error unsupported_device(const ExecContext& ctx, const char* op) {
  return make_error(ErrorCode::kUnsupported,
                    std::string(op) + " is not implemented on " + device_kind_name(ctx.device.kind));
}

}  // namespace fathom::ops
