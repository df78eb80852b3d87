#include "backends/cpu/sequence_kernels.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/gemm.h"
#include "backends/cpu/kernels.h"
#include "backends/cpu/parallel.h"

namespace fathom::cpu {

void conv1d(const float* x, int64_t t_in, int64_t c_in, int64_t x_time_stride, int64_t x_channel_stride,
            const float* w, const float* bias, int64_t c_out, int k, int stride, int pad, float* y, int64_t t_out,
            float* cols) {
  const int64_t ck = c_in * k;
  // im2col: cols[t, ci * k + j] = x(t * stride + j - pad, ci).
  parallel_for(t_out, std::max<int64_t>(1, 4096 / std::max<int64_t>(ck, 1)), [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      float* row = cols + t * ck;
      for (int64_t ci = 0; ci < c_in; ++ci) {
        for (int j = 0; j < k; ++j) {
          const int64_t src = t * stride + j - pad;
          row[ci * k + j] = (src >= 0 && src < t_in) ? x[src * x_time_stride + ci * x_channel_stride] : 0.0f;
        }
      }
    }
  });
  sgemm(false, true, static_cast<int>(t_out), static_cast<int>(c_out), static_cast<int>(ck), 1.0f, cols,
        static_cast<int>(ck), w, static_cast<int>(ck), 0.0f, y, static_cast<int>(c_out));
  if (bias) bias_add(y, bias, t_out, c_out);
}

void attention_cached(const float* q, const int32_t* cu, int batch, const float* const* k, const float* const* v,
                      const int32_t* kv_len, int64_t kv_stride, int heads, int head_dim, float scale, bool causal,
                      float* out) {
  const int64_t total = cu[batch];
  const int64_t hidden = static_cast<int64_t>(heads) * head_dim;
  // Work items: (query row, head). Rows are mapped back to their sequence by a search over cu.
  const int64_t items = total * heads;
  int max_kv = 0;
  for (int b = 0; b < batch; ++b) max_kv = std::max(max_kv, kv_len[b]);
  parallel_for(items, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, static_cast<int64_t>(max_kv) * head_dim)),
               [&](int64_t i0, int64_t i1, int) {
                 std::vector<float> scores(static_cast<std::size_t>(std::max(max_kv, 1)));
                 for (int64_t item = i0; item < i1; ++item) {
                   const int64_t row = item / heads;
                   const int h = static_cast<int>(item % heads);
                   const int b = static_cast<int>(std::upper_bound(cu, cu + batch + 1, static_cast<int32_t>(row)) - cu) - 1;
                   const int64_t n = cu[b + 1] - cu[b];
                   const int64_t i = row - cu[b];
                   int64_t visible = kv_len[b];
                   if (causal) visible = std::min<int64_t>(visible, kv_len[b] - n + i + 1);
                   float* o = out + row * hidden + static_cast<int64_t>(h) * head_dim;
                   if (visible <= 0) {
                     std::fill(o, o + head_dim, 0.0f);
                     continue;
                   }
                   const float* qr = q + row * hidden + static_cast<int64_t>(h) * head_dim;
                   const float* kb = k[b] + static_cast<int64_t>(h) * head_dim;
                   const float* vb = v[b] + static_cast<int64_t>(h) * head_dim;
                   float mx = -std::numeric_limits<float>::infinity();
                   for (int64_t j = 0; j < visible; ++j) {
                     const float* kr = kb + j * kv_stride;
                     float s = 0.0f;
                     for (int d = 0; d < head_dim; ++d) s += qr[d] * kr[d];
                     s *= scale;
                     scores[static_cast<std::size_t>(j)] = s;
                     mx = std::max(mx, s);
                   }
                   double sum = 0.0;
                   for (int64_t j = 0; j < visible; ++j) {
                     const float e = std::exp(scores[static_cast<std::size_t>(j)] - mx);
                     scores[static_cast<std::size_t>(j)] = e;
                     sum += e;
                   }
                   const float inv = static_cast<float>(1.0 / sum);
                   std::fill(o, o + head_dim, 0.0f);
                   for (int64_t j = 0; j < visible; ++j) {
                     const float p = scores[static_cast<std::size_t>(j)] * inv;
                     const float* vr = vb + j * kv_stride;
                     for (int d = 0; d < head_dim; ++d) o[d] += p * vr[d];
                   }
                 }
               });
}

}  // namespace fathom::cpu
