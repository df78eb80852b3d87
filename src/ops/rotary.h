#pragma once
// Rotary position embedding (the rotate-half form) applied in place to the queries and keys of a fused
// q | k | v projection, for the encoders whose positions are rotary (NomicBERT, GTE v1.5, ModernBERT).
#include "ops/common.h"

namespace fathom::ops {

// qkv: [T, 3 * heads * head_dim] (each token's row q | k | v, each [heads, head_dim]), rotated in place:
// for every head of q and k, and i < rotary_dim / 2, with angle = positions[t] * inv_freq[i] (f32 product),
//   x[i]                  <- x[i] cos(angle) - x[i + rotary_dim/2] sin(angle)
//   x[i + rotary_dim/2]   <- x[i + rotary_dim/2] cos(angle) + x[i] sin(angle)
// Dims [rotary_dim, head_dim) and v are untouched. positions: int32 [T] on ctx.device; inv_freq: f32
// [rotary_dim / 2] on ctx.device; rotary_dim even, 2..head_dim. f32 on CPU; f32/f16/bf16 on CUDA
// (angles and products in f32; capturable: reads positions on the device).
Status rotary_qk(ExecContext& ctx, const TensorView& qkv, const TensorView& positions, int heads, int head_dim,
                 int rotary_dim, const TensorView& inv_freq);

}  // namespace fathom::ops
