#pragma once
// Rotary position embeddings (rotate-half form) on a fused q | k | v projection, with the optional per-head
// RMSNorm of queries and keys that precedes them in Qwen3-style attention.
#include "ops/common.h"
#include "ops/qkv_layout.h"

namespace fathom::ops {

// In place on qkv [T, layout.row_width()]: for every token t and every query and key head,
//   1. when q_norm / k_norm is given ([head_dim]): head <- head / sqrt(mean(head^2) + eps) * norm;
//   2. for i < head_dim / 2, angle = positions[t] * inv_freq[i], c = cos(angle) * scaling,
//      s = sin(angle) * scaling: x[i] <- x[i] c - x[i + half] s, x[i + half] <- x[i + half] c + x[i] s.
// Value heads are untouched. positions: int32 [T] on ctx.device; inv_freq: f32 [head_dim / 2] on ctx.device
// (models::decoder::rope_inv_freq computes it from the checkpoint's rope settings); norms in qkv's dtype.
// head_dim even (<= 256 on CUDA). f32 on CPU; f32/f16/bf16 on CUDA (angles and arithmetic in f32). Capturable.
Status qk_norm_rope(ExecContext& ctx, const TensorView& qkv, const QkvLayout& layout, const TensorView& positions,
                    const TensorView& inv_freq, float scaling, const TensorView* q_norm, const TensorView* k_norm,
                    float eps);

}  // namespace fathom::ops
