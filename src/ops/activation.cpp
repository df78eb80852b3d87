#include "ops/activation.h"

#include "backends/cpu/decoder_kernels.h"
#include "backends/cpu/encoder_kernels.h"
#include "backends/cpu/kernels.h"
#include "backends/cpu/sanm_kernels.h"
#if FATHOM_WITH_CUDA
#include "backends/cuda/decoder_kernels.h"
#include "backends/cuda/ops_cuda.h"
#include "backends/cuda/sanm_kernels.h"
#endif

namespace fathom::ops {
namespace {
Status same_f32(ExecContext& ctx, const TensorView& a, const TensorView& b, const char* op, const char* an,
                const char* bn) {
  FATHOM_TRY(check_tensor(ctx, a, a.dtype, op, an));
  FATHOM_TRY(check_tensor(ctx, b, a.dtype, op, bn));
  FATHOM_TRY(check_shape(b, a.shape, op, bn));
  if (ctx.device.kind == DeviceKind::kCpu && a.dtype != DType::kF32)
    return make_error(ErrorCode::kUnsupported, std::string(op) + " on cpu computes in float32 only");
  return Status::Ok();
}
}  // namespace

Status bias_add(ExecContext& ctx, const TensorView& x, const TensorView& bias) {
  FATHOM_TRY(check_tensor(ctx, x, x.dtype, "bias_add", "x"));
  FATHOM_TRY(check_tensor(ctx, bias, x.dtype, "bias_add", "bias"));
  FATHOM_TRY(check_shape(bias, Shape{x.cols()}, "bias_add", "bias"));
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      if (x.dtype != DType::kF32) return make_error(ErrorCode::kUnsupported, "bias_add on cpu computes in float32 only");
      cpu::bias_add(x.ptr<float>(), bias.ptr<float>(), x.rows(), x.cols());
      return Status::Ok();
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return cuda::ops::bias_add(ctx, x, bias);
#endif
    default:
      return unsupported_device(ctx, "bias_add");
  }
}

Status add(ExecContext& ctx, const TensorView& a, const TensorView& b, const TensorView& out) {
  FATHOM_TRY(same_f32(ctx, a, b, "add", "a", "b"));
  FATHOM_TRY(same_f32(ctx, a, out, "add", "a", "out"));
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      cpu::add(a.ptr<float>(), b.ptr<float>(), out.ptr<float>(), a.numel());
      return Status::Ok();
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return cuda::ops::add(ctx, a, b, out);
#endif
    default:
      return unsupported_device(ctx, "add");
  }
}

Status gelu(ExecContext& ctx, const TensorView& x, const TensorView& y, GeluMode mode) {
  FATHOM_TRY(same_f32(ctx, x, y, "gelu", "x", "y"));
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      cpu::gelu(x.ptr<float>(), y.ptr<float>(), x.numel(), mode == GeluMode::kTanh);
      return Status::Ok();
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return cuda::ops::gelu(ctx, x, y, mode == GeluMode::kTanh);
#endif
    default:
      return unsupported_device(ctx, "gelu");
  }
}

Status tanh(ExecContext& ctx, const TensorView& x, const TensorView& y) {
  FATHOM_TRY(same_f32(ctx, x, y, "tanh", "x", "y"));
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      cpu::tanh(x.ptr<float>(), y.ptr<float>(), x.numel());
      return Status::Ok();
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return cuda::ops::tanh(ctx, x, y);
#endif
    default:
      return unsupported_device(ctx, "tanh");
  }
}

Status softmax(ExecContext& ctx, const TensorView& x, const TensorView& y) {
  FATHOM_TRY(same_f32(ctx, x, y, "softmax", "x", "y"));
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      cpu::softmax_rows(x.ptr<float>(), y.ptr<float>(), x.rows(), x.cols());
      return Status::Ok();
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return cuda::ops::softmax(ctx, x, y);
#endif
    default:
      return unsupported_device(ctx, "softmax");
  }
}

Status gated_activation(ExecContext& ctx, const TensorView& x, const TensorView& y, GatedActivation act,
                        bool activate_first) {
  constexpr const char* kOp = "gated_activation";
  FATHOM_TRY(check_tensor(ctx, x, x.dtype, kOp, "x"));
  FATHOM_TRY(check_tensor(ctx, y, x.dtype, kOp, "y"));
  if (x.cols() % 2 != 0)
    return make_error(ErrorCode::kInvalidArgument, "gated_activation: x has an odd number of columns (" +
                                                       std::to_string(x.cols()) + ")");
  FATHOM_TRY(check_matrix(y, x.rows(), x.cols() / 2, kOp, "y"));
  if (x.data == y.data) return make_error(ErrorCode::kInvalidArgument, "gated_activation: y must not alias x");
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      if (x.dtype != DType::kF32)
        return make_error(ErrorCode::kUnsupported, "gated_activation on cpu computes in float32 only");
      cpu::gated_activation(x.ptr<float>(), y.ptr<float>(), x.rows(), x.cols() / 2, static_cast<int>(act),
                            activate_first);
      return Status::Ok();
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return cuda::ops::gated_activation(ctx, x, y, static_cast<int>(act), activate_first);
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

Status relu(ExecContext& ctx, const TensorView& x, const TensorView& y) {
  FATHOM_TRY(same_f32(ctx, x, y, "relu", "x", "y"));
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      cpu::relu(x.ptr<float>(), y.ptr<float>(), x.numel());
      return Status::Ok();
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return status_from_exceptions([&] {
        cuda::relu(x.dtype, x.data, y.data, static_cast<std::size_t>(x.numel()), static_cast<cudaStream_t>(ctx.stream));
      });
#endif
    default:
      return unsupported_device(ctx, "relu");
  }
}

Status silu_mul(ExecContext& ctx, const TensorView& gate_up, const TensorView& out) {
  constexpr const char* kOp = "silu_mul";
  FATHOM_TRY(check_tensor(ctx, gate_up, gate_up.dtype, kOp, "gate_up"));
  FATHOM_TRY(check_tensor(ctx, out, gate_up.dtype, kOp, "out"));
  if (gate_up.cols() % 2 != 0)
    return make_error(ErrorCode::kInvalidArgument, "silu_mul: gate_up " + gate_up.shape.to_string() + " has an odd last dimension");
  FATHOM_TRY(check_matrix(out, gate_up.rows(), gate_up.cols() / 2, kOp, "out"));
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      if (gate_up.dtype != DType::kF32) return make_error(ErrorCode::kUnsupported, "silu_mul on cpu computes in float32 only");
      cpu::silu_mul(gate_up.ptr<float>(), out.ptr<float>(), gate_up.rows(), gate_up.cols() / 2);
      return Status::Ok();
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return status_from_exceptions([&] {
        cuda::silu_mul(gate_up.dtype, gate_up.data, out.data, static_cast<int>(gate_up.rows()),
                       static_cast<int>(gate_up.cols() / 2), static_cast<cudaStream_t>(ctx.stream));
      });
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

}  // namespace fathom::ops
