#pragma once
// CPU kernels for sequence models beyond the encoder-only set in kernels.h: 1-D convolution and attention
// of new query tokens over cached keys/values. f32, row-major, inputs validated by the ops layer
// (ops/conv1d.h, ops/attention_cached.h).
#include <cstddef>
#include <cstdint>

namespace fathom::cpu {

// y[t, co] = bias[co] + sum_{ci, j} w[co, ci, j] * x(t * stride + j - pad, ci), zero outside [0, t_in).
// x(t, c) = x[t * x_time_stride + c * x_channel_stride] (covers both [T, C] and [C, T] layouts).
// w: [c_out, c_in, k]; bias may be null; y: [t_out, c_out]. `cols` is scratch of t_out * c_in * k floats.
void conv1d(const float* x, int64_t t_in, int64_t c_in, int64_t x_time_stride, int64_t x_channel_stride,
            const float* w, const float* bias, int64_t c_out, int k, int stride, int pad, float* y, int64_t t_out,
            float* cols);

// Attention of packed query rows over per-sequence key/value tensors.
// q: [T, heads * head_dim] with sequence b's queries at rows [cu[b], cu[b+1]); k[b], v[b]: [kv_len[b],
// heads * head_dim] (row stride kv_stride floats). out: [T, heads * head_dim].
// out = softmax(scale * q k^T) v per sequence and head; when `causal`, query i of a sequence with n queries
// sees keys [0, kv_len - n + i] (the queries are the last n positions of the key sequence).
void attention_cached(const float* q, const int32_t* cu, int batch, const float* const* k, const float* const* v,
                      const int32_t* kv_len, int64_t kv_stride, int heads, int head_dim, float scale, bool causal,
                      float* out);

}  // namespace fathom::cpu
