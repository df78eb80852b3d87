#include "backends/cpu/encoder_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "backends/cpu/gemm.h"
#include "backends/cpu/parallel.h"

namespace fathom::cpu {

void rotary_qk(float* qkv, const int32_t* positions, int64_t tokens, int heads, int head_dim, int rotary_dim,
               const float* inv_freq) {
  const int64_t hidden = static_cast<int64_t>(heads) * head_dim;
  const int half = rotary_dim / 2;
  parallel_for(tokens, 16, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      float* row = qkv + t * 3 * hidden;
      const float pos = static_cast<float>(positions[t]);
      for (int i = 0; i < half; ++i) {
        const float angle = pos * inv_freq[i];
        const float c = std::cos(angle), s = std::sin(angle);
        for (int part = 0; part < 2; ++part)  // q, then k
          for (int h = 0; h < heads; ++h) {
            float* x = row + part * hidden + static_cast<int64_t>(h) * head_dim;
            const float x1 = x[i], x2 = x[i + half];
            x[i] = x1 * c - x2 * s;
            x[i + half] = x2 * c + x1 * s;
          }
      }
    }
  });
}

namespace {
float activate(float v, int act) {
  switch (act) {
    case 0: return v / (1.0f + std::exp(-v));
    case 1: return 0.5f * v * (1.0f + std::erf(v * 0.7071067811865476f));
    default: return 0.5f * v * (1.0f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
  }
}
}  // namespace

void gated_activation(const float* x, float* y, int64_t rows, int64_t n, int act, bool activate_first) {
  parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* a = x + r * 2 * n;
      const float* b = a + n;
      float* o = y + r * n;
      if (activate_first)
        for (int64_t c = 0; c < n; ++c) o[c] = activate(a[c], act) * b[c];
      else
        for (int64_t c = 0; c < n; ++c) o[c] = a[c] * activate(b[c], act);
    }
  });
}

void attention_varlen_extras(const float* qkv, const int32_t* cu, int batch, int heads, int head_dim, float scale,
                             const float* distance_bias, int span, int window_half, float* out, float* scratch,
                             int max_seqlen) {
  const int64_t hidden = static_cast<int64_t>(heads) * head_dim;
  const int64_t ld_qkv = 3 * hidden;
  const int64_t tasks = static_cast<int64_t>(batch) * heads;
  // As attention_varlen: with OpenBLAS one task at a time (BLAS threads inside), else tasks over the pool.
  const bool blas = sgemm_uses_blas();
  auto gemm = blas ? sgemm : sgemm_serial;
  auto body = [&](int64_t i0, int64_t i1, int chunk) {
    float* scores = scratch + static_cast<std::size_t>(chunk) * max_seqlen * max_seqlen;
    for (int64_t task = i0; task < i1; ++task) {
      const int b = static_cast<int>(task / heads);
      const int h = static_cast<int>(task % heads);
      const int64_t start = cu[b];
      const int len = cu[b + 1] - cu[b];
      if (len <= 0) continue;
      const float* q = qkv + start * ld_qkv + static_cast<int64_t>(h) * head_dim;
      const float* k = q + hidden;
      const float* v = q + 2 * hidden;
      float* o = out + start * hidden + static_cast<int64_t>(h) * head_dim;
      gemm(false, true, len, len, head_dim, scale, q, static_cast<int>(ld_qkv), k, static_cast<int>(ld_qkv), 0.0f,
           scores, len);
      const float* bias = distance_bias ? distance_bias + static_cast<int64_t>(h) * (2 * span - 1) + span - 1 : nullptr;
      for (int i = 0; i < len; ++i) {
        float* row = scores + static_cast<int64_t>(i) * len;
        float mx = -std::numeric_limits<float>::infinity();
        for (int j = 0; j < len; ++j) {
          if (window_half >= 0 && std::abs(j - i) > window_half) {
            row[j] = -std::numeric_limits<float>::infinity();
            continue;
          }
          if (bias) row[j] += bias[j - i];
          mx = std::max(mx, row[j]);
        }
        float sum = 0.0f;
        for (int j = 0; j < len; ++j) {
          row[j] = std::isinf(row[j]) && row[j] < 0 ? 0.0f : std::exp(row[j] - mx);
          sum += row[j];
        }
        const float inv = 1.0f / sum;
        for (int j = 0; j < len; ++j) row[j] *= inv;
      }
      gemm(false, false, len, head_dim, len, 1.0f, scores, len, v, static_cast<int>(ld_qkv), 0.0f, o,
           static_cast<int>(hidden));
    }
  };
  if (blas)
    body(0, tasks, 0);
  else
    parallel_for(tasks, 1, body);
}

}  // namespace fathom::cpu
