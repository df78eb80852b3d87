#include "ops/embedding.h"

#include "backends/cpu/kernels.h"
#if FATHOM_WITH_CUDA
#include "backends/cuda/ops_cuda.h"
#endif

namespace fathom::ops {
namespace {
Status check_indices(const TensorView& idx, int64_t limit, const char* what) {
  const int32_t* p = idx.ptr<int32_t>();
  for (int64_t t = 0; t < idx.numel(); ++t) {
    if (p[t] < 0 || p[t] >= limit)
      return make_error(ErrorCode::kInvalidArgument, std::string("embed_tokens: ") + what + " " + std::to_string(p[t]) +
                                                         " at position " + std::to_string(t) + " is outside [0, " +
                                                         std::to_string(limit) + ")");
  }
  return Status::Ok();
}
}  // namespace

Status embed_tokens(ExecContext& ctx, const TensorView& ids, const TensorView* positions, const TensorView* types,
                    const EmbeddingTables& tables, const TensorView& out) {
  constexpr const char* kOp = "embed_tokens";
  const DType dt = tables.word.dtype;
  FATHOM_TRY(check_tensor(ctx, ids, DType::kI32, kOp, "ids"));
  const int64_t tokens = ids.numel();
  if (tables.word.shape.rank != 2) return make_error(ErrorCode::kInvalidArgument, "embed_tokens: word table must be 2-D");
  const int64_t hidden = tables.word.dim(1);
  FATHOM_TRY(check_tensor(ctx, tables.word, dt, kOp, "word"));
  FATHOM_TRY(check_tensor(ctx, out, dt, kOp, "out"));
  FATHOM_TRY(check_shape(out, Shape{tokens, hidden}, kOp, "out"));
  if (tables.position) {
    FATHOM_TRY(check_tensor(ctx, *tables.position, dt, kOp, "position"));
    FATHOM_TRY(check_matrix(*tables.position, -1, hidden, kOp, "position"));
    if (!positions) return make_error(ErrorCode::kInvalidArgument, "embed_tokens: a position table needs positions");
    FATHOM_TRY(check_tensor(ctx, *positions, DType::kI32, kOp, "positions"));
    FATHOM_TRY(check_shape(*positions, Shape{tokens}, kOp, "positions"));
  }
  if (tables.token_type) {
    FATHOM_TRY(check_tensor(ctx, *tables.token_type, dt, kOp, "token_type"));
    FATHOM_TRY(check_matrix(*tables.token_type, -1, hidden, kOp, "token_type"));
    if (tables.token_type->dim(0) < 1) return make_error(ErrorCode::kInvalidArgument, "embed_tokens: empty token_type table");
  }
  if (types) {
    FATHOM_TRY(check_tensor(ctx, *types, DType::kI32, kOp, "types"));
    FATHOM_TRY(check_shape(*types, Shape{tokens}, kOp, "types"));
  }
  switch (ctx.device.kind) {
    case DeviceKind::kCpu:
      if (dt != DType::kF32) return make_error(ErrorCode::kUnsupported, "embed_tokens on cpu computes in float32 only");
      FATHOM_TRY(check_indices(ids, tables.word.dim(0), "token id"));
      if (tables.position) FATHOM_TRY(check_indices(*positions, tables.position->dim(0), "position"));
      if (tables.token_type && types) FATHOM_TRY(check_indices(*types, tables.token_type->dim(0), "token type"));
      cpu::embeddings(ids.ptr<int32_t>(), tables.position ? positions->ptr<int32_t>() : nullptr,
                      types ? types->ptr<int32_t>() : nullptr, tables.word.ptr<float>(),
                      tables.position ? tables.position->ptr<float>() : nullptr,
                      tables.token_type ? tables.token_type->ptr<float>() : nullptr, out.ptr<float>(), tokens, hidden);
      return Status::Ok();
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return cuda::ops::embed_tokens(ctx, ids, positions, types, tables.word, tables.position, tables.token_type, out);
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

}  // namespace fathom::ops
