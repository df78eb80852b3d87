// conv1d and attention_cached against direct loops (CPU f32).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ops/attention_cached.h"
#include "ops/conv1d.h"

namespace fathom::ops {
namespace {

std::vector<float> random_values(std::size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

TEST(Conv1d, MatchesDirectLoopBothLayouts) {
  CpuExecContext cpu;
  const int B = 2, T = 11, C = 3, O = 5, K = 3;
  for (int stride : {1, 2}) {
    const int64_t To = conv1d_output_length(T, K, stride, 1);
    auto x = random_values(B * T * C, 1), w = random_values(O * C * K, 2), bias = random_values(O, 3);
    // Channel-major copy of x.
    std::vector<float> xc(x.size());
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < T; ++t)
        for (int c = 0; c < C; ++c) xc[(b * C + c) * T + t] = x[(b * T + t) * C + c];
    std::vector<float> y1(B * To * O), y2(B * To * O);
    TensorView wv(w.data(), DType::kF32, Shape{O, C, K}), bv(bias.data(), DType::kF32, Shape{O});
    ASSERT_TRUE(conv1d(cpu.ctx(), TensorView(x.data(), DType::kF32, Shape{B, T, C}), Conv1dInput::kTimeMajor, wv, &bv,
                       stride, 1, TensorView(y1.data(), DType::kF32, Shape{B, To, O})).ok());
    ASSERT_TRUE(conv1d(cpu.ctx(), TensorView(xc.data(), DType::kF32, Shape{B, C, T}), Conv1dInput::kChannelMajor, wv,
                       &bv, stride, 1, TensorView(y2.data(), DType::kF32, Shape{B, To, O})).ok());
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < To; ++t)
        for (int o = 0; o < O; ++o) {
          double s = bias[o];
          for (int c = 0; c < C; ++c)
            for (int k = 0; k < K; ++k) {
              const int src = t * stride + k - 1;
              if (src >= 0 && src < T) s += double(w[(o * C + c) * K + k]) * x[(b * T + src) * C + c];
            }
          EXPECT_NEAR(y1[(b * To + t) * O + o], s, 1e-5);
          EXPECT_NEAR(y2[(b * To + t) * O + o], s, 1e-5);
        }
  }
}

TEST(Conv1d, RejectsChannelMismatch) {
  CpuExecContext cpu;
  std::vector<float> x(10 * 4), w(2 * 3 * 3), y(10 * 2);
  auto st = conv1d(cpu.ctx(), TensorView(x.data(), DType::kF32, Shape{10, 4}), Conv1dInput::kTimeMajor,
                   TensorView(w.data(), DType::kF32, Shape{2, 3, 3}), nullptr, 1, 1,
                   TensorView(y.data(), DType::kF32, Shape{10, 2}));
  EXPECT_FALSE(st.ok());
}

TEST(AttentionCached, CausalAndFullMatchDirectLoop) {
  CpuExecContext cpu;
  const int H = 2, D = 4, HD = H * D;
  const std::vector<int> n{1, 3}, L{5, 3};
  VarlenBatch qb = VarlenBatch::from_lengths(n);
  auto q = random_values(qb.total() * HD, 7);
  std::vector<std::vector<float>> k, v;
  std::vector<TensorView> kv, vv;
  for (int b = 0; b < 2; ++b) {
    k.push_back(random_values(L[b] * HD, 10 + b));
    v.push_back(random_values(L[b] * HD, 20 + b));
  }
  for (int b = 0; b < 2; ++b) {
    kv.emplace_back(k[b].data(), DType::kF32, Shape{L[b], HD});
    vv.emplace_back(v[b].data(), DType::kF32, Shape{L[b], HD});
  }
  for (bool causal : {false, true}) {
    std::vector<float> out(qb.total() * HD);
    ASSERT_TRUE(attention_cached(cpu.ctx(), TensorView(q.data(), DType::kF32, Shape{qb.total(), HD}), qb, kv, vv, H, D,
                                 0.5f, causal, TensorView(out.data(), DType::kF32, Shape{qb.total(), HD})).ok());
    for (int b = 0; b < 2; ++b)
      for (int i = 0; i < n[b]; ++i)
        for (int h = 0; h < H; ++h) {
          const int row = qb.cu_seqlens[b] + i;
          const int vis = causal ? L[b] - n[b] + i + 1 : L[b];
          std::vector<double> s(vis);
          double mx = -1e30, sum = 0;
          for (int j = 0; j < vis; ++j) {
            double dot = 0;
            for (int d = 0; d < D; ++d) dot += double(q[row * HD + h * D + d]) * k[b][j * HD + h * D + d];
            s[j] = 0.5 * dot;
            mx = std::max(mx, s[j]);
          }
          for (auto& e : s) sum += (e = std::exp(e - mx));
          for (int d = 0; d < D; ++d) {
            double o = 0;
            for (int j = 0; j < vis; ++j) o += s[j] / sum * v[b][j * HD + h * D + d];
            EXPECT_NEAR(out[row * HD + h * D + d], o, 1e-5) << "causal " << causal;
          }
        }
  }
}

TEST(AttentionCached, RejectsMoreQueriesThanKeysWhenCausal) {
  CpuExecContext cpu;
  VarlenBatch qb = VarlenBatch::from_lengths({3});
  std::vector<float> q(3 * 4), k(2 * 4), out(3 * 4);
  std::vector<TensorView> kv{TensorView(k.data(), DType::kF32, Shape{2, 4})};
  EXPECT_FALSE(attention_cached(cpu.ctx(), TensorView(q.data(), DType::kF32, Shape{3, 4}), qb, kv, kv, 1, 4, 1.0f, true,
                                TensorView(out.data(), DType::kF32, Shape{3, 4})).ok());
}

}  // namespace
}  // namespace fathom::ops
