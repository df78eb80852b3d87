#include "ops/qk_norm_rope.h"

#include "backends/cpu/decoder_kernels.h"
#if FATHOM_WITH_CUDA
#include "backends/cuda/decoder_kernels.h"
#endif

namespace fathom::ops {

Status qk_norm_rope(ExecContext& ctx, const TensorView& qkv, const QkvLayout& layout, const TensorView& positions,
                    const TensorView& inv_freq, float scaling, const TensorView* q_norm, const TensorView* k_norm,
                    float eps) {
  constexpr const char* kOp = "qk_norm_rope";
  if (!layout.valid() || layout.head_dim % 2 != 0)
    return make_error(ErrorCode::kInvalidArgument, "qk_norm_rope: invalid head layout (q_heads " +
                                                       std::to_string(layout.q_heads) + ", kv_heads " +
                                                       std::to_string(layout.kv_heads) + ", head_dim " +
                                                       std::to_string(layout.head_dim) + ")");
  FATHOM_TRY(check_tensor(ctx, qkv, qkv.dtype, kOp, "qkv"));
  FATHOM_TRY(check_matrix(qkv, -1, layout.row_width(), kOp, "qkv"));
  FATHOM_TRY(check_tensor(ctx, positions, DType::kI32, kOp, "positions"));
  FATHOM_TRY(check_shape(positions, Shape{qkv.rows()}, kOp, "positions"));
  FATHOM_TRY(check_tensor(ctx, inv_freq, DType::kF32, kOp, "inv_freq"));
  FATHOM_TRY(check_shape(inv_freq, Shape{layout.head_dim / 2}, kOp, "inv_freq"));
  for (const TensorView* n : {q_norm, k_norm}) {
    if (!n) continue;
    FATHOM_TRY(check_tensor(ctx, *n, qkv.dtype, kOp, n == q_norm ? "q_norm" : "k_norm"));
    FATHOM_TRY(check_shape(*n, Shape{layout.head_dim}, kOp, n == q_norm ? "q_norm" : "k_norm"));
  }
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      if (qkv.dtype != DType::kF32) return make_error(ErrorCode::kUnsupported, "qk_norm_rope on cpu computes in float32 only");
      cpu::qk_norm_rope(qkv.ptr<float>(), qkv.rows(), layout.row_width(), layout.q_heads, layout.kv_heads, layout.head_dim,
                        positions.ptr<int32_t>(), inv_freq.ptr<float>(), scaling, q_norm ? q_norm->ptr<float>() : nullptr,
                        k_norm ? k_norm->ptr<float>() : nullptr, eps);
      return Status::Ok();
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return status_from_exceptions([&] {
        cuda::QkNormRopeParams p;
        p.dtype = qkv.dtype;
        p.qkv = qkv.data;
        p.tokens = static_cast<int>(qkv.rows());
        p.ld = static_cast<int>(layout.row_width());
        p.q_heads = layout.q_heads;
        p.kv_heads = layout.kv_heads;
        p.head_dim = layout.head_dim;
        p.positions = positions.ptr<int32_t>();
        p.inv_freq = inv_freq.ptr<float>();
        p.scaling = scaling;
        p.q_norm = q_norm ? q_norm->data : nullptr;
        p.k_norm = k_norm ? k_norm->data : nullptr;
        p.eps = eps;
        cuda::qk_norm_rope(p, static_cast<cudaStream_t>(ctx.stream));
      });
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

}  // namespace fathom::ops
