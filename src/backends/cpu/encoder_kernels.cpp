#include "backends/cpu/encoder_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "backends/cpu/attention_tasks.h"
#include "backends/cpu/kernels.h"
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
    case 1: return gelu_erf(v);
    default: return gelu_tanh(v);
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
  attention_varlen_tasks(qkv, cu, batch, heads, heads, head_dim, scale, out, scratch, max_seqlen, [&](int h, float* scores, int len) {
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
  });
}

}  // namespace fathom::cpu
