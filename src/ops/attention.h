#pragma once
// Bidirectional multi-head self-attention over a packed variable-length batch (no padding, no mask).
#include "ops/common.h"
#include "ops/varlen.h"

namespace fathom::ops {

// qkv: [T, 3 * heads * head_dim], each token's row holding q | k | v, each [heads, head_dim] (the output
// of one fused QKV projection). out: [T, heads * head_dim], must not alias qkv. T = batch.total().
// For each sequence and head: out = softmax(scale * q k^T) v. Scratch comes from ctx.workspace
// (CPU: threads * max_seqlen^2 floats).
Status attention_varlen(ExecContext& ctx, const TensorView& qkv, const VarlenBatch& batch, int heads, int head_dim,
                        float scale, const TensorView& out);

}  // namespace fathom::ops
