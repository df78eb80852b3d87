#pragma once
// CPU kernels on raw host pointers, f32 unless stated. Inputs are validated by the ops layer (src/ops/);
// these functions assume valid shapes and in-range indices. Row-major throughout. Outputs may alias the
// matching input where noted. Rows are spread over the CPU pool.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "base/dtype.h"

namespace fathom::cpu {

// x[r, c] += bias[c].
void bias_add(float* x, const float* bias, int64_t rows, int64_t cols);
// out = a + b (n elements; out may alias a or b).
void add(const float* a, const float* b, float* out, int64_t n);
// One GELU value: the exact (erf) form and the tanh approximation, shared by gelu() and the gated MLPs
// (encoder_kernels.h).
inline float gelu_erf(float v) { return 0.5f * v * (1.0f + std::erf(v * 0.7071067811865476f)); }
inline float gelu_tanh(float v) {
  return 0.5f * v * (1.0f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));  // sqrt(2/pi)
}
// y = gelu(x), erf form or tanh approximation (y may alias x).
void gelu(const float* x, float* y, int64_t n, bool tanh_form);
// y = tanh(x) (y may alias x).
void tanh(const float* x, float* y, int64_t n);
// out = LayerNorm(x + residual) * gamma + beta over each row; residual may be null; out may alias x.
void layer_norm(const float* x, const float* residual, const float* gamma, const float* beta, float eps, float* out,
                int64_t rows, int64_t cols);
// Row-wise softmax (out may alias x).
void softmax_rows(const float* x, float* out, int64_t rows, int64_t cols);
// out = x / max(||x||_2, eps) per row (out may alias x).
void l2_normalize_rows(const float* x, float* out, int64_t rows, int64_t cols, float eps);
// out[t] = word[ids[t]] + pos_table[pos[t]] (if pos_table) + type_table[types ? types[t] : 0] (if type_table).
void embeddings(const int32_t* ids, const int32_t* pos, const int32_t* types, const float* word, const float* pos_table,
                const float* type_table, float* out, int64_t tokens, int64_t hidden);
// Pooling modes, as ops::PoolingMode.
enum class Pool { kCls = 0, kMean = 1, kMax = 2, kLastToken = 3 };
// out[b] = pool(hidden[cu[b] .. cu[b+1])) for b < batch; empty sequences give zeros.
void pool(const float* hidden, const int32_t* cu, int batch, int64_t hidden_size, Pool mode, float* out);
// Floats of scratch attention_varlen needs for sequences up to max_seqlen.
std::size_t attention_scratch_floats(int max_seqlen);
// Multi-head self-attention without masking over packed sequences. qkv is [T, 3*heads*head_dim] holding
// q | k | v per token (each heads*head_dim, head-major); out is [T, heads*head_dim]; sequences are
// [cu[b], cu[b+1]). out = softmax(scale * q k^T) v per sequence and head.
void attention_varlen(const float* qkv, const int32_t* cu, int batch, int heads, int head_dim, float scale, float* out,
                      float* scratch, int max_seqlen);
// Element conversion between f32, f16 and bf16 (round to nearest even when narrowing).
void convert(const void* src, DType src_type, void* dst, DType dst_type, int64_t n);

}  // namespace fathom::cpu
