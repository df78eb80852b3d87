#pragma once
// Decoder self-attention over a paged (block) KV cache. A layer's cache is two pools (keys, values) of
// [pool rows, kv_heads * head_dim]; pool rows are grouped in blocks of `block_size` consecutive rows, and a
// sequence's position p lives in row block_table[p / block_size] * block_size + p % block_size. The cache
// itself (block allocation, budgets) is models::decoder::PagedKvCache; these ops only read and write rows.
//
// Every per-batch quantity (slots, sequence descriptors, block tables) is memory of ctx.device read when the
// work executes, and the work is sized by fixed bounds, so on CUDA the ops are capturable in a graph whose
// descriptors are refreshed by an upload before each replay.
#include <cstdint>

#include "ops/common.h"
#include "ops/qkv_layout.h"

namespace fathom::ops {

// Copies each token's key and value heads from qkv [T, layout.row_width()] into row slots[t] of k_pool /
// v_pool ([rows, layout.kv_width()], qkv's dtype). slots: int32 [T] on ctx.device; a negative slot skips the
// token (padding rows). Slots must be distinct and < rows (checked on CPU).
Status paged_kv_write(ExecContext& ctx, const TensorView& qkv, const QkvLayout& layout, const TensorView& slots,
                      const TensorView& k_pool, const TensorView& v_pool);

// One sequence of a batch: its query rows [q_start, q_start + q_len) of qkv / out, the cached positions it
// attends over (kv_len, the new q_len included: the queries are positions [kv_len - q_len, kv_len)), and the
// index of its first block in the flat block-table array.
struct PagedSeq {
  int32_t q_start = 0;
  int32_t q_len = 0;
  int32_t kv_len = 0;
  int32_t table_offset = 0;
};
static_assert(sizeof(PagedSeq) == 16);

struct PagedAttentionBounds {
  int num_seqs = 0;    // entries of `seqs`
  int max_q_len = 0;   // >= every q_len (sizes the work on CUDA; <= 65535)
  int rows = 0;        // rows of qkv / out (>= every q_start + q_len)
  int block_size = 0;  // pool rows per block
};

// Causal grouped-query attention: out[row, h] = softmax(scale * q_h . k_g^T) v_g over the positions [0,
// kv_len - q_len + i] of the row's sequence (i: the row's index among its queries), g = h / (q_heads /
// kv_heads). q is read from columns [0, q_width) of qkv [rows, row_width]; out [rows, q_width] must not alias
// qkv; rows outside every sequence are not written. seqs, block_tables: memory of ctx.device (int32 entries;
// on CPU checked against the pools and bounds). f32 on CPU; f32/f16/bf16 on CUDA with head_dim <= 256.
Status attention_paged(ExecContext& ctx, const TensorView& qkv, const QkvLayout& layout, const PagedSeq* seqs,
                       const int32_t* block_tables, int block_table_entries, const PagedAttentionBounds& bounds,
                       const TensorView& k_pool, const TensorView& v_pool, float scale, const TensorView& out);

}  // namespace fathom::ops
