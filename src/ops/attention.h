#pragma once
// Multi-head self-attention over a packed variable-length batch (no padding): bidirectional for encoders,
// causal grouped-query for a decoder's prefill of fresh sequences.
#include "ops/common.h"
#include "ops/qkv_layout.h"
#include "ops/varlen.h"

namespace fathom::ops {

// qkv: [T, 3 * heads * head_dim], each token's row holding q | k | v, each [heads, head_dim] (the output
// of one fused QKV projection). out: [T, heads * head_dim], must not alias qkv. T = batch.total().
// For each sequence and head: out = softmax(scale * q k^T) v. Scratch comes from ctx.workspace
// (CPU: threads * max_seqlen^2 floats).
Status attention_varlen(ExecContext& ctx, const TensorView& qkv, const VarlenBatch& batch, int heads, int head_dim,
                        float scale, const TensorView& out);

// What an encoder adds to plain bidirectional attention (both optional, combinable).
struct AttentionExtras {
  // Additive bias by relative distance (MPNet's bucketed relative positions, resolved per distance at load):
  // f32 [heads, 2 * span - 1] on ctx.device; the score of query i and key j of one sequence gets
  // distance_bias[h, (j - i) + span - 1] (after scaling). Every sequence must be at most `span` long (checked on the host copy, except for
  // a CUDA graph batch description, whose model checks the lengths).
  const TensorView* distance_bias = nullptr;
  int span = 0;
  // Sliding window (ModernBERT's local layers): query i sees only keys j with |j - i| <= window_half
  // (< 0: every key).
  int window_half = -1;
};
// attention_varlen with extras: same contract; an extras struct with neither set is plain attention.
// On CUDA a distance bias runs the CUDA-core kernel for every dtype; a window alone keeps the tensor-core kernel
// for f16 / bf16 (capturable either way).
Status attention_varlen(ExecContext& ctx, const TensorView& qkv, const VarlenBatch& batch, int heads, int head_dim,
                        float scale, const TensorView& out, const AttentionExtras& extras);

// Causal grouped-query self-attention over packed fresh sequences (a decoder prefill with nothing cached yet):
// qkv [T, layout.row_width()] holds q | k | v rows (ops/qkv_layout.h), out [T, layout.q_width()] must not alias
// it. Query i of a sequence sees that sequence's keys [0, i]; query head h reads key / value head
// h / (q_heads / kv_heads). Equal to attention_paged over a cache holding just these rows, without reading the
// cache: on CUDA the tensor-core kernel for f16 / bf16 with head_dim 32 / 64 / 128, the CUDA-core kernel
// otherwise. Scratch as attention_varlen.
Status attention_varlen_causal(ExecContext& ctx, const TensorView& qkv, const QkvLayout& layout, const VarlenBatch& batch,
                               float scale, const TensorView& out);

}  // namespace fathom::ops
