#pragma once
// Attention of new query tokens over per-sequence key/value tensors (a decoder's KV cache, or an
// encoder output for cross-attention). Unlike attention_varlen, queries and keys are separate and each
// sequence's keys live in their own (possibly strided) tensor, so cache slots need no packing.
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

}  // namespace fathom::ops
