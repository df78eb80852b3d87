#include "backends/cpu/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backends/cpu/attention_tasks.h"
#include "backends/cpu/gemm.h"
#include "backends/cpu/parallel.h"
#include "base/half.h"

namespace fathom::cpu {
namespace {
// Rows per parallel chunk so that a chunk holds at least ~16k elements.
int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1)); }
constexpr int64_t kElemGrain = 16384;
}  // namespace

void bias_add(float* x, const float* bias, int64_t rows, int64_t cols) {
  parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      float* xr = x + r * cols;
      for (int64_t c = 0; c < cols; ++c) xr[c] += bias[c];
    }
  });
}

void add(const float* a, const float* b, float* out, int64_t n) {
  parallel_for(n, kElemGrain, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; ++i) out[i] = a[i] + b[i];
  });
}

void tanh(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

void gelu(const float* x, float* y, int64_t n, bool tanh_form) {
  parallel_for(n, kElemGrain / 4, [&](int64_t i0, int64_t i1, int) {
    if (tanh_form) {
      for (int64_t i = i0; i < i1; ++i) y[i] = gelu_tanh(x[i]);
    } else {
      for (int64_t i = i0; i < i1; ++i) y[i] = gelu_erf(x[i]);
    }
  });
}

void layer_norm(const float* x, const float* residual, const float* gamma, const float* beta, float eps, float* out,
                int64_t rows, int64_t cols) {
  parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * cols;
      float* o = out + r * cols;
      if (residual) {
        const float* rr = residual + r * cols;
        for (int64_t c = 0; c < cols; ++c) o[c] = xr[c] + rr[c];
        xr = o;
      }
      double sum = 0.0;
      for (int64_t c = 0; c < cols; ++c) sum += xr[c];
      const float mean = static_cast<float>(sum / static_cast<double>(cols));
      double sq = 0.0;
      for (int64_t c = 0; c < cols; ++c) {
        const float d = xr[c] - mean;
        sq += static_cast<double>(d) * d;
      }
      const float inv = 1.0f / std::sqrt(static_cast<float>(sq / static_cast<double>(cols)) + eps);
      for (int64_t c = 0; c < cols; ++c) o[c] = (xr[c] - mean) * inv * gamma[c] + beta[c];
    }
  });
}

namespace {
void softmax_row(const float* x, float* o, int64_t cols) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t c = 0; c < cols; ++c) mx = std::max(mx, x[c]);
  float sum = 0.0f;
  for (int64_t c = 0; c < cols; ++c) {
    o[c] = std::exp(x[c] - mx);
    sum += o[c];
  }
  const float inv = 1.0f / sum;
  for (int64_t c = 0; c < cols; ++c) o[c] *= inv;
}
}  // namespace

void softmax_rows(const float* x, float* out, int64_t rows, int64_t cols) {
  parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) softmax_row(x + r * cols, out + r * cols, cols);
  });
}

void l2_normalize_rows(const float* x, float* out, int64_t rows, int64_t cols, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    double sq = 0.0;
    for (int64_t c = 0; c < cols; ++c) sq += static_cast<double>(xr[c]) * xr[c];
    const float inv = 1.0f / std::max(static_cast<float>(std::sqrt(sq)), eps);
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = xr[c] * inv;
  }
}

void embeddings(const int32_t* ids, const int32_t* pos, const int32_t* types, const float* word, const float* pos_table,
                const float* type_table, float* out, int64_t tokens, int64_t hidden) {
  parallel_for(tokens, row_grain(hidden), [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      float* o = out + t * hidden;
      const float* w = word + static_cast<int64_t>(ids[t]) * hidden;
      std::memcpy(o, w, static_cast<size_t>(hidden) * sizeof(float));
      if (pos_table) {
        const float* p = pos_table + static_cast<int64_t>(pos[t]) * hidden;
        for (int64_t c = 0; c < hidden; ++c) o[c] += p[c];
      }
      if (type_table) {
        const float* ty = type_table + static_cast<int64_t>(types ? types[t] : 0) * hidden;
        for (int64_t c = 0; c < hidden; ++c) o[c] += ty[c];
      }
    }
  });
}

void pool(const float* hidden, const int32_t* cu, int batch, int64_t h, Pool mode, float* out) {
  for (int b = 0; b < batch; ++b) {
    const int64_t begin = cu[b], end = cu[b + 1];
    float* o = out + static_cast<int64_t>(b) * h;
    if (end <= begin) {
      std::fill(o, o + h, 0.0f);
      continue;
    }
    switch (mode) {
      case Pool::kCls:
        std::memcpy(o, hidden + begin * h, static_cast<size_t>(h) * sizeof(float));
        break;
      case Pool::kLastToken:
        std::memcpy(o, hidden + (end - 1) * h, static_cast<size_t>(h) * sizeof(float));
        break;
      case Pool::kMean: {
        // Summed in double: a long sequence's f32 running sum would add ~sqrt(n) ulps to the mean.
        std::vector<double> acc(static_cast<std::size_t>(h), 0.0);
        for (int64_t t = begin; t < end; ++t)
          for (int64_t c = 0; c < h; ++c) acc[static_cast<std::size_t>(c)] += hidden[t * h + c];
        const double n = static_cast<double>(end - begin);
        for (int64_t c = 0; c < h; ++c) o[c] = static_cast<float>(acc[static_cast<std::size_t>(c)] / n);
        break;
      }
      case Pool::kMax:
        std::memcpy(o, hidden + begin * h, static_cast<size_t>(h) * sizeof(float));
        for (int64_t t = begin + 1; t < end; ++t)
          for (int64_t c = 0; c < h; ++c) o[c] = std::max(o[c], hidden[t * h + c]);
        break;
    }
  }
}

std::size_t attention_scratch_floats(int max_seqlen) {
  return static_cast<std::size_t>(num_threads()) * static_cast<std::size_t>(max_seqlen) *
         static_cast<std::size_t>(max_seqlen);
}

void attention_varlen(const float* qkv, const int32_t* cu, int batch, int heads, int head_dim, float scale, float* out,
                      float* scratch, int max_seqlen) {
  attention_varlen_tasks(qkv, cu, batch, heads, heads, head_dim, scale, out, scratch, max_seqlen,
                         [](int, float* scores, int len) {
                           for (int i = 0; i < len; ++i)
                             softmax_row(scores + static_cast<int64_t>(i) * len, scores + static_cast<int64_t>(i) * len, len);
                         });
}

void convert(const void* src, DType src_type, void* dst, DType dst_type, int64_t n) {
  auto load = [&](int64_t i) -> float {
    switch (src_type) {
      case DType::kF16: return f16_to_f32(static_cast<const uint16_t*>(src)[i]);
      case DType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(src)[i]);
      default: return static_cast<const float*>(src)[i];
    }
  };
  parallel_for(n, kElemGrain * 4, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; ++i) {
      const float v = load(i);
      switch (dst_type) {
        case DType::kF16: static_cast<uint16_t*>(dst)[i] = f32_to_f16(v); break;
        case DType::kBF16: static_cast<uint16_t*>(dst)[i] = f32_to_bf16(v); break;
        default: static_cast<float*>(dst)[i] = v; break;
      }
    }
  });
}

}  // namespace fathom::cpu
