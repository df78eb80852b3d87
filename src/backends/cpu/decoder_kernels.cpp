#include "backends/cpu/decoder_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backends/cpu/attention_tasks.h"
#include "backends/cpu/parallel.h"

namespace fathom::cpu {

void rms_norm(const float* x, const float* weight, float eps, float* out, int64_t rows, int64_t cols) {
  parallel_for(rows, 16, [&](int64_t begin, int64_t end, int) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * cols;
      float* o = out + r * cols;
      double sum = 0.0;
      for (int64_t c = 0; c < cols; ++c) sum += static_cast<double>(xr[c]) * xr[c];
      const float inv = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(cols)) + eps);
      for (int64_t c = 0; c < cols; ++c) o[c] = weight[c] * (xr[c] * inv);
    }
  });
}

void silu_mul(const float* gate_up, float* out, int64_t rows, int64_t cols) {
  parallel_for(rows, 16, [&](int64_t begin, int64_t end, int) {
    for (int64_t r = begin; r < end; ++r) {
      const float* g = gate_up + r * 2 * cols;
      const float* u = g + cols;
      float* o = out + r * cols;
      for (int64_t c = 0; c < cols; ++c) o[c] = g[c] / (1.0f + std::exp(-g[c])) * u[c];
    }
  });
}

namespace {

void norm_head(float* h, const float* w, int d, float eps) {
  double sum = 0.0;
  for (int i = 0; i < d; ++i) sum += static_cast<double>(h[i]) * h[i];
  const float inv = 1.0f / std::sqrt(static_cast<float>(sum / d) + eps);
  for (int i = 0; i < d; ++i) h[i] = w[i] * (h[i] * inv);
}

}  // namespace

void qk_norm_rope(float* qkv, int64_t tokens, int64_t ld, int q_heads, int kv_heads, int head_dim,
                  const int32_t* positions, const float* inv_freq, float scaling, const float* q_norm,
                  const float* k_norm, float eps) {
  const int half = head_dim / 2;
  parallel_for(tokens, 4, [&](int64_t begin, int64_t end, int) {
    std::vector<float> c(static_cast<std::size_t>(half)), s(static_cast<std::size_t>(half));
    for (int64_t t = begin; t < end; ++t) {
      const float pos = static_cast<float>(positions[t]);
      for (int i = 0; i < half; ++i) {
        const float angle = pos * inv_freq[i];
        c[static_cast<std::size_t>(i)] = std::cos(angle) * scaling;
        s[static_cast<std::size_t>(i)] = std::sin(angle) * scaling;
      }
      float* row = qkv + t * ld;
      for (int h = 0; h < q_heads + kv_heads; ++h) {
        float* x = row + static_cast<int64_t>(h) * head_dim;
        const float* w = h < q_heads ? q_norm : k_norm;
        if (w) norm_head(x, w, head_dim, eps);
        for (int i = 0; i < half; ++i) {
          const float a = x[i], b = x[i + half];
          x[i] = a * c[static_cast<std::size_t>(i)] - b * s[static_cast<std::size_t>(i)];
          x[i + half] = b * c[static_cast<std::size_t>(i)] + a * s[static_cast<std::size_t>(i)];
        }
      }
    }
  });
}

void paged_kv_write(const float* qkv, int64_t tokens, int64_t ld, int q_heads, int kv_heads, int head_dim,
                    const int32_t* slots, float* k_pool, float* v_pool) {
  const int64_t width = static_cast<int64_t>(kv_heads) * head_dim;
  const int64_t k_col = static_cast<int64_t>(q_heads) * head_dim;
  for (int64_t t = 0; t < tokens; ++t) {
    if (slots[t] < 0) continue;
    const float* row = qkv + t * ld;
    std::memcpy(k_pool + static_cast<int64_t>(slots[t]) * width, row + k_col, static_cast<std::size_t>(width) * sizeof(float));
    std::memcpy(v_pool + static_cast<int64_t>(slots[t]) * width, row + k_col + width,
                static_cast<std::size_t>(width) * sizeof(float));
  }
}

void attention_paged(const float* qkv, int64_t ld, const PagedSeqHost* seqs, int num_seqs, const int32_t* block_tables,
                     int block_size, const float* k_pool, const float* v_pool, int q_heads, int kv_heads, int head_dim,
                     float scale, float* out) {
  const int group = q_heads / kv_heads;
  const int64_t width = static_cast<int64_t>(kv_heads) * head_dim;
  const int64_t out_ld = static_cast<int64_t>(q_heads) * head_dim;
  // Work items: (sequence, query row, head), flattened over the packed query rows.
  std::vector<int64_t> first(static_cast<std::size_t>(num_seqs) + 1, 0);
  for (int b = 0; b < num_seqs; ++b) first[static_cast<std::size_t>(b) + 1] = first[static_cast<std::size_t>(b)] + seqs[b].q_len;
  const int64_t items = first.back() * q_heads;
  parallel_for(items, 8, [&](int64_t begin, int64_t end, int) {
    std::vector<float> scores;
    std::vector<float> acc(static_cast<std::size_t>(head_dim));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t query = item / q_heads;
      const int h = static_cast<int>(item % q_heads);
      const int b = static_cast<int>(std::upper_bound(first.begin(), first.end(), query) - first.begin()) - 1;
      const PagedSeqHost& sq = seqs[b];
      const int i = static_cast<int>(query - first[static_cast<std::size_t>(b)]);
      const int64_t row = sq.q_start + i;
      const float* q = qkv + row * ld + static_cast<int64_t>(h) * head_dim;
      float* o = out + row * out_ld + static_cast<int64_t>(h) * head_dim;
      const int visible = sq.kv_len - sq.q_len + i + 1;
      if (visible <= 0) {
        std::fill(o, o + head_dim, 0.0f);
        continue;
      }
      const int64_t col = static_cast<int64_t>(h / group) * head_dim;
      const int32_t* table = block_tables + sq.table_offset;
      scores.resize(static_cast<std::size_t>(visible));
      float mx = -INFINITY;
      for (int p = 0; p < visible; ++p) {
        const int64_t slot = static_cast<int64_t>(table[p / block_size]) * block_size + p % block_size;
        const float* k = k_pool + slot * width + col;
        float dot = 0.0f;
        for (int d = 0; d < head_dim; ++d) dot += q[d] * k[d];
        scores[static_cast<std::size_t>(p)] = dot * scale;
        mx = std::max(mx, dot * scale);
      }
      float sum = 0.0f;
      for (int p = 0; p < visible; ++p) {
        const float e = std::exp(scores[static_cast<std::size_t>(p)] - mx);
        scores[static_cast<std::size_t>(p)] = e;
        sum += e;
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int p = 0; p < visible; ++p) {
        const int64_t slot = static_cast<int64_t>(table[p / block_size]) * block_size + p % block_size;
        const float* v = v_pool + slot * width + col;
        const float w = scores[static_cast<std::size_t>(p)];
        for (int d = 0; d < head_dim; ++d) acc[static_cast<std::size_t>(d)] += w * v[d];
      }
      const float inv = 1.0f / sum;
      for (int d = 0; d < head_dim; ++d) o[d] = acc[static_cast<std::size_t>(d)] * inv;
    }
  });
}

void attention_varlen_causal(const float* qkv, const int32_t* cu, int batch, int q_heads, int kv_heads, int head_dim,
                             float scale, float* out, float* scratch, int max_seqlen) {
  attention_varlen_tasks(qkv, cu, batch, q_heads, kv_heads, head_dim, scale, out, scratch, max_seqlen,
                         [](int, float* scores, int len) {
                           for (int i = 0; i < len; ++i) {
                             float* row = scores + static_cast<int64_t>(i) * len;
                             float mx = row[0];
                             for (int j = 1; j <= i; ++j) mx = std::max(mx, row[j]);
                             float sum = 0.0f;
                             for (int j = 0; j <= i; ++j) sum += (row[j] = std::exp(row[j] - mx));
                             const float inv = 1.0f / sum;
                             for (int j = 0; j <= i; ++j) row[j] *= inv;
                             std::fill(row + i + 1, row + len, 0.0f);
                           }
                         });
}

}  // namespace fathom::cpu
