#include "ops/attention_paged.h"

#include <cstddef>
#include <string>
#include <vector>

#include "backends/cpu/decoder_kernels.h"
#if FATHOM_WITH_CUDA
#include "backends/cuda/decoder_kernels.h"
#endif

namespace fathom::ops {

#if FATHOM_WITH_CUDA
static_assert(sizeof(PagedSeq) == sizeof(cuda::PagedAttnSeq) && offsetof(PagedSeq, q_start) == offsetof(cuda::PagedAttnSeq, q_start) &&
              offsetof(PagedSeq, q_len) == offsetof(cuda::PagedAttnSeq, q_len) &&
              offsetof(PagedSeq, kv_len) == offsetof(cuda::PagedAttnSeq, kv_len) &&
              offsetof(PagedSeq, table_offset) == offsetof(cuda::PagedAttnSeq, table_offset));
#endif
static_assert(sizeof(PagedSeq) == sizeof(cpu::PagedSeqHost));

namespace {

Status check_pools(ExecContext& ctx, const TensorView& qkv, const QkvLayout& layout, const TensorView& k_pool,
                   const TensorView& v_pool, const char* op) {
  if (!layout.valid())
    return make_error(ErrorCode::kInvalidArgument, std::string(op) + ": invalid head layout (q_heads " +
                                                       std::to_string(layout.q_heads) + ", kv_heads " +
                                                       std::to_string(layout.kv_heads) + ", head_dim " +
                                                       std::to_string(layout.head_dim) + ")");
  FATHOM_TRY(check_tensor(ctx, qkv, qkv.dtype, op, "qkv"));
  FATHOM_TRY(check_matrix(qkv, -1, layout.row_width(), op, "qkv"));
  FATHOM_TRY(check_tensor(ctx, k_pool, qkv.dtype, op, "k_pool"));
  FATHOM_TRY(check_tensor(ctx, v_pool, qkv.dtype, op, "v_pool"));
  FATHOM_TRY(check_matrix(k_pool, -1, layout.kv_width(), op, "k_pool"));
  FATHOM_TRY(check_matrix(v_pool, k_pool.rows(), layout.kv_width(), op, "v_pool"));
  return Status::Ok();
}

}  // namespace

Status paged_kv_write(ExecContext& ctx, const TensorView& qkv, const QkvLayout& layout, const TensorView& slots,
                      const TensorView& k_pool, const TensorView& v_pool) {
  constexpr const char* kOp = "paged_kv_write";
  FATHOM_TRY(check_pools(ctx, qkv, layout, k_pool, v_pool, kOp));
  FATHOM_TRY(check_tensor(ctx, slots, DType::kI32, kOp, "slots"));
  FATHOM_TRY(check_shape(slots, Shape{qkv.rows()}, kOp, "slots"));
  switch (ctx.device.kind) {
    case DeviceKind::kCpu: {
      if (qkv.dtype != DType::kF32) return make_error(ErrorCode::kUnsupported, "paged_kv_write on cpu computes in float32 only");
      std::vector<char> used(static_cast<std::size_t>(k_pool.rows()), 0);
      for (int64_t t = 0; t < qkv.rows(); ++t) {
        const int32_t s = slots.ptr<int32_t>()[t];
        if (s < 0) continue;
        if (s >= k_pool.rows() || used[static_cast<std::size_t>(s)])
          return make_error(ErrorCode::kInvalidArgument, "paged_kv_write: token " + std::to_string(t) + " has slot " +
                                                             std::to_string(s) + ", out of range or repeated (pool rows " +
                                                             std::to_string(k_pool.rows()) + ")");
        used[static_cast<std::size_t>(s)] = 1;
      }
      cpu::paged_kv_write(qkv.ptr<float>(), qkv.rows(), layout.row_width(), layout.q_heads, layout.kv_heads,
                          layout.head_dim, slots.ptr<int32_t>(), k_pool.ptr<float>(), v_pool.ptr<float>());
      return Status::Ok();
    }
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return status_from_exceptions([&] {
        cuda::PagedKvWriteParams p;
        p.dtype = qkv.dtype;
        p.qkv = qkv.data;
        p.tokens = static_cast<int>(qkv.rows());
        p.ld = static_cast<int>(layout.row_width());
        p.q_heads = layout.q_heads;
        p.kv_heads = layout.kv_heads;
        p.head_dim = layout.head_dim;
        p.slots = slots.ptr<int32_t>();
        p.k_pool = k_pool.data;
        p.v_pool = v_pool.data;
        cuda::paged_kv_write(p, static_cast<cudaStream_t>(ctx.stream));
      });
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

Status attention_paged(ExecContext& ctx, const TensorView& qkv, const QkvLayout& layout, const PagedSeq* seqs,
                       const int32_t* block_tables, int block_table_entries, const PagedAttentionBounds& bounds,
                       const TensorView& k_pool, const TensorView& v_pool, float scale, const TensorView& out) {
  constexpr const char* kOp = "attention_paged";
  FATHOM_TRY(check_pools(ctx, qkv, layout, k_pool, v_pool, kOp));
  FATHOM_TRY(check_tensor(ctx, out, qkv.dtype, kOp, "out"));
  FATHOM_TRY(check_matrix(out, qkv.rows(), layout.q_width(), kOp, "out"));
  if (bounds.num_seqs < 0 || bounds.max_q_len < 0 || bounds.block_size <= 0 || bounds.rows != qkv.rows())
    return make_error(ErrorCode::kInvalidArgument, "attention_paged: bounds must be non-negative with a positive "
                                                   "block_size and rows equal to qkv's rows (" +
                                                       std::to_string(qkv.rows()) + ")");
  if (bounds.num_seqs > 0 && (!seqs || !block_tables))
    return make_error(ErrorCode::kInvalidArgument, "attention_paged: null sequence descriptor or block tables");
  switch (ctx.device.kind) {
    case DeviceKind::kCpu: {
      if (qkv.dtype != DType::kF32) return make_error(ErrorCode::kUnsupported, "attention_paged on cpu computes in float32 only");
      const int64_t pool_blocks = k_pool.rows() / bounds.block_size;
      for (int b = 0; b < bounds.num_seqs; ++b) {
        const PagedSeq& s = seqs[b];
        const int64_t blocks = (static_cast<int64_t>(s.kv_len) + bounds.block_size - 1) / bounds.block_size;
        const bool ok = s.q_len >= 0 && s.q_len <= bounds.max_q_len && s.q_start >= 0 &&
                        static_cast<int64_t>(s.q_start) + s.q_len <= qkv.rows() && s.kv_len >= s.q_len &&
                        s.table_offset >= 0 && s.table_offset + blocks <= block_table_entries;
        if (!ok)
          return make_error(ErrorCode::kInvalidArgument, "attention_paged: sequence " + std::to_string(b) +
                                                             " (q_start " + std::to_string(s.q_start) + ", q_len " +
                                                             std::to_string(s.q_len) + ", kv_len " + std::to_string(s.kv_len) +
                                                             ") does not fit the rows, bounds or block tables");
        for (int64_t i = 0; i < blocks; ++i) {
          const int32_t blk = block_tables[s.table_offset + i];
          if (blk < 0 || blk >= pool_blocks)
            return make_error(ErrorCode::kInvalidArgument, "attention_paged: sequence " + std::to_string(b) + " block " +
                                                               std::to_string(blk) + " outside the pool of " +
                                                               std::to_string(pool_blocks) + " blocks");
        }
      }
      cpu::attention_paged(qkv.ptr<float>(), layout.row_width(), reinterpret_cast<const cpu::PagedSeqHost*>(seqs),
                           bounds.num_seqs, block_tables, bounds.block_size, k_pool.ptr<float>(), v_pool.ptr<float>(),
                           layout.q_heads, layout.kv_heads, layout.head_dim, scale, out.ptr<float>());
      return Status::Ok();
    }
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda:
      return status_from_exceptions([&] {
        cuda::PagedAttentionParams p;
        p.dtype = qkv.dtype;
        p.qkv = qkv.data;
        p.ld = static_cast<int>(layout.row_width());
        p.seqs = reinterpret_cast<const cuda::PagedAttnSeq*>(seqs);
        p.num_seqs = bounds.num_seqs;
        p.max_q_len = bounds.max_q_len;
        p.block_tables = block_tables;
        p.block_size = bounds.block_size;
        p.k_pool = k_pool.data;
        p.v_pool = v_pool.data;
        p.q_heads = layout.q_heads;
        p.kv_heads = layout.kv_heads;
        p.head_dim = layout.head_dim;
        p.scale = scale;
        p.out = out.data;
        cuda::attention_paged(p, static_cast<cudaStream_t>(ctx.stream));
      });
#endif
    default:
      return unsupported_device(ctx, kOp);
  }
}

}  // namespace fathom::ops
