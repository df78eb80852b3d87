#include "backends/cpu/sanm_kernels.h"

#include "backends/cpu/parallel.h"

namespace fathom::cpu {

void relu(const float* x, float* y, int64_t n) {
  parallel_for(n, 4096, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
  });
}

void fsmn_memory(const float* src, int64_t ld, int64_t column, const float* w, int kernel, int left_pad,
                 const int32_t* cu, int batch, int64_t d, float* out) {
  const int64_t total = cu[batch];
  parallel_for(total, 16, [&](int64_t begin, int64_t end, int) {
    int b = 0;
    for (int64_t t = begin; t < end; ++t) {
      while (t >= cu[b + 1]) ++b;
      const int64_t s0 = cu[b], s1 = cu[b + 1];
      float* o = out + t * d;
      const float* vt = src + t * ld + column;
      for (int64_t c = 0; c < d; ++c) o[c] = vt[c];
      for (int k = 0; k < kernel; ++k) {
        const int64_t s = t + k - left_pad;
        if (s < s0 || s >= s1) continue;
        const float* vs = src + s * ld + column;
        for (int64_t c = 0; c < d; ++c) o[c] += w[c * kernel + k] * vs[c];
      }
    }
  });
}

}  // namespace fathom::cpu
