#pragma once
// Attention of new query tokens over per-sequence key/value tensors (a decoder's KV cache, or an
// encoder output for cross-attention). Unlike attention_varlen, queries and keys are separate and each
// sequence's keys live in their own (possibly strided) tensor, so cache slots need no packing.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ops/common.h"
#include "ops/varlen.h"

namespace fathom::ops {

// q: [T, heads * head_dim], sequence b's queries at rows [cu[b], cu[b+1]) of `queries`.
// keys[b], values[b]: [L_b, >= heads * head_dim] (row-major; the row length is the stride, so views of a
// wider cache are fine; keys and values must have the same row length). out: [T, heads * head_dim], must
// not alias q. out = softmax(scale * q k^T) v per sequence and head. When `causal`, query i of a sequence
// with n queries sees keys [0, L_b - n + i] (the queries are the sequence's last n positions; L_b >= n).
// f32 on CPU; f32, f16, bf16 on CUDA with head_dim <= 128 (scratch from ctx.workspace).
Status attention_cached(ExecContext& ctx, const TensorView& q, const VarlenBatch& queries,
                        const std::vector<TensorView>& keys, const std::vector<TensorView>& values, int heads,
                        int head_dim, float scale, bool causal, const TensorView& out);

// --- Prepared variant: the per-sequence layout is read from memory of ctx.device when the work runs ---
// One sequence of the descriptor (the layout the CUDA kernel reads): key / value row 0 (row stride
// `ld_kv` elements, as attention_cached's views), keys, and the sequence's query rows [q_start, q_start +
// q_len) of q / out. A sequence with kv_len 0 gets zero outputs.
struct CachedSeq {
  const void* k = nullptr;
  const void* v = nullptr;
  int32_t kv_len = 0;
  int32_t q_start = 0;
  int32_t q_len = 0;
  int32_t pad_ = 0;
};
static_assert(sizeof(CachedSeq) == 32);

// Fixed bounds of one launch: every entry must have q_len <= max_q_len, q_start + q_len <= rows and
// kv_len <= max_kv_len (keys past max_kv_len are not seen); the bounds (not the entries) size the work, so
// one launch serves every descriptor content within them. `kv_aligned`: the caller promises that every
// k / v pointer is 16-byte aligned (enables wide loads on CUDA).
struct CachedAttentionBounds {
  int num_seqs = 0;
  int rows = 0;
  int max_q_len = 0;
  int max_kv_len = 0;
  int64_t ld_kv = 0;
  bool kv_aligned = false;
};

// Scratch bytes attention_cached_prepared needs for these bounds on ctx.device (0 on CPU).
std::size_t attention_cached_scratch_bytes(const ExecContext& ctx, const CachedAttentionBounds& bounds, int heads,
                                           int head_dim);

// attention_cached over a prepared descriptor: `seqs` (bounds.num_seqs entries) lives in memory of
// ctx.device and is read when the work executes (on CUDA: by the kernel, so its contents may be refreshed
// by a stream-ordered upload before each replay of a captured graph); `scratch` holds
// attention_cached_scratch_bytes() bytes of device memory (may be null when that is 0). q / out:
// [bounds.rows, heads * head_dim]. On CUDA nothing is allocated, synchronised or read back: the call is
// capturable in a CUDA graph. Same kernels, dtypes and arithmetic as attention_cached.
Status attention_cached_prepared(ExecContext& ctx, const TensorView& q, const CachedSeq* seqs,
                                 const CachedAttentionBounds& bounds, int heads, int head_dim, float scale, bool causal,
                                 void* scratch, const TensorView& out);

}  // namespace fathom::ops
