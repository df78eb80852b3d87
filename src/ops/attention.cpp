#include "ops/attention.h"

#include "backends/cpu/decoder_kernels.h"
#include "backends/cpu/encoder_kernels.h"
#include "backends/cpu/kernels.h"
#if FATHOM_WITH_CUDA
#include "backends/cuda/ops_cuda.h"
#endif

namespace fathom::ops {

Status attention_varlen(ExecContext& ctx, const TensorView& qkv, const VarlenBatch& batch, int heads, int head_dim,
                        float scale, const TensorView& out) {
  return attention_varlen(ctx, qkv, batch, heads, head_dim, scale, out, AttentionExtras{});
}

Status attention_varlen(ExecContext& ctx, const TensorView& qkv, const VarlenBatch& batch, int heads, int head_dim,
                        float scale, const TensorView& out, const AttentionExtras& extras) {
  constexpr const char* kOp = "attention_varlen";
  if (heads <= 0 || head_dim <= 0)
    return make_error(ErrorCode::kInvalidArgument, "attention_varlen: heads and head_dim must be positive");
  FATHOM_TRY(batch.validate());
  const int64_t hidden = static_cast<int64_t>(heads) * head_dim;
  FATHOM_TRY(check_tensor(ctx, qkv, qkv.dtype, kOp, "qkv"));
  FATHOM_TRY(check_tensor(ctx, out, qkv.dtype, kOp, "out"));
  FATHOM_TRY(check_matrix(qkv, batch.total(), 3 * hidden, kOp, "qkv"));
  FATHOM_TRY(check_matrix(out, batch.total(), hidden, kOp, "out"));
  const bool has_extras = extras.distance_bias || extras.window_half >= 0;
  if (extras.distance_bias) {
    if (extras.span < 1) return make_error(ErrorCode::kInvalidArgument, "attention_varlen: distance_bias needs span >= 1");
    FATHOM_TRY(check_tensor(ctx, *extras.distance_bias, DType::kF32, kOp, "distance_bias"));
    FATHOM_TRY(check_shape(*extras.distance_bias, Shape{heads, 2 * static_cast<int64_t>(extras.span) - 1}, kOp,
                           "distance_bias"));
    if (!batch.cuda_desc && batch.max_seqlen > extras.span)  // a graph batch's lengths are checked by its model
      return make_error(ErrorCode::kInvalidArgument, "attention_varlen: a sequence of " + std::to_string(batch.max_seqlen) +
                                                         " tokens exceeds the relative-bias span " + std::to_string(extras.span));
  }
  switch (ctx.device.kind) {
    case DeviceKind::kCpu: {
      if (qkv.dtype != DType::kF32)
        return make_error(ErrorCode::kUnsupported, "attention_varlen on cpu computes in float32 only");
      if (batch.total() == 0) return Status::Ok();
      if (!ctx.workspace) return make_error(ErrorCode::kInvalidArgument, "attention_varlen: ExecContext has no workspace");
      FATHOM_ASSIGN_OR_RETURN(void* scratch,
                              ctx.workspace->get(cpu::attention_scratch_floats(batch.max_seqlen) * sizeof(float)));
      if (has_extras)
        cpu::attention_varlen_extras(qkv.ptr<float>(), batch.cu_seqlens.data(), batch.batch(), heads, head_dim, scale,
                                     extras.distance_bias ? extras.distance_bias->ptr<float>() : nullptr, extras.span,
                                     extras.window_half, out.ptr<float>(), static_cast<float*>(scratch),
                                     batch.max_seqlen);
      else
        cpu::attention_varlen(qkv.ptr<float>(), batch.cu_seqlens.data(), batch.batch(), heads, head_dim, scale,
                              out.ptr<float>(), static_cast<float*>(scratch), batch.max_seqlen);
      return Status::Ok();
    }
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return cuda::ops::attention_varlen(ctx, qkv, batch.cu_seqlens.data(), batch.batch(), batch.cuda_desc,
                                         batch.cuda_max_seqs, heads, head_dim, scale, out,
                                         extras.distance_bias ? extras.distance_bias->data : nullptr, extras.span,
                                         extras.window_half);
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

Status attention_varlen_causal(ExecContext& ctx, const TensorView& qkv, const QkvLayout& layout, const VarlenBatch& batch,
                               float scale, const TensorView& out) {
  constexpr const char* kOp = "attention_varlen_causal";
  if (!layout.valid())
    return make_error(ErrorCode::kInvalidArgument, "attention_varlen_causal: q_heads must be a positive multiple of kv_heads");
  FATHOM_TRY(batch.validate());
  FATHOM_TRY(check_tensor(ctx, qkv, qkv.dtype, kOp, "qkv"));
  FATHOM_TRY(check_tensor(ctx, out, qkv.dtype, kOp, "out"));
  FATHOM_TRY(check_matrix(qkv, batch.total(), layout.row_width(), kOp, "qkv"));
  FATHOM_TRY(check_matrix(out, batch.total(), layout.q_width(), kOp, "out"));
  switch (ctx.device.kind) {
    case DeviceKind::kCpu: {
      if (qkv.dtype != DType::kF32)
        return make_error(ErrorCode::kUnsupported, "attention_varlen_causal on cpu computes in float32 only");
      if (batch.total() == 0) return Status::Ok();
      if (!ctx.workspace) return make_error(ErrorCode::kInvalidArgument, "attention_varlen_causal: ExecContext has no workspace");
      FATHOM_ASSIGN_OR_RETURN(void* scratch,
                              ctx.workspace->get(cpu::attention_scratch_floats(batch.max_seqlen) * sizeof(float)));
      cpu::attention_varlen_causal(qkv.ptr<float>(), batch.cu_seqlens.data(), batch.batch(), layout.q_heads,
                                   layout.kv_heads, layout.head_dim, scale, out.ptr<float>(), static_cast<float*>(scratch),
                                   batch.max_seqlen);
      return Status::Ok();
    }
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return cuda::ops::attention_varlen_causal(ctx, qkv, batch.cu_seqlens.data(), batch.batch(), batch.cuda_desc,
                                                batch.cuda_max_seqs, layout.q_heads, layout.kv_heads, layout.head_dim,
                                                scale, out);
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

}  // namespace fathom::ops
