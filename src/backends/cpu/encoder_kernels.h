#pragma once
// CPU kernels of the newer encoder families (rotary positions, gated MLPs, attention with a relative
// bias or a sliding window), f32 on host pointers, validated by the ops layer (src/ops/).
#include <cstdint>

namespace fathom::cpu {

// In-place rotate-half rotary embedding of q and k of a fused qkv [tokens, 3 * heads * head_dim] (see
// ops/rotary.h): angle = positions[t] * inv_freq[i] for i < rotary_dim / 2.
void rotary_qk(float* qkv, const int32_t* positions, int64_t tokens, int heads, int head_dim, int rotary_dim,
               const float* inv_freq);
// y[r, :n] = act(a) * b (activate_first) or a * act(b), a = x[r, :n], b = x[r, n:2n]. act: 0 SiLU,
// 1 exact GELU, 2 tanh GELU (ops::GatedActivation order).
void gated_activation(const float* x, float* y, int64_t rows, int64_t n, int act, bool activate_first);
// attention_varlen (kernels.h) plus, per sequence and head, scores[i][j] += distance_bias[h, j - i + span - 1]
// when distance_bias is non-null, and keys with |j - i| > window_half masked when window_half >= 0.
void attention_varlen_extras(const float* qkv, const int32_t* cu, int batch, int heads, int head_dim, float scale,
                             const float* distance_bias, int span, int window_half, float* out, float* scratch,
                             int max_seqlen);

}  // namespace fathom::cpu
