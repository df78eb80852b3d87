// Every CPU op against straightforward reference code (double accumulation) written here.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backends/cpu/gemm.h"
#include "base/half.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/convert.h"
#include "ops/embedding.h"
#include "ops/gemm.h"
#include "ops/norm.h"
#include "ops/pooling.h"
#include "runtime/exec_context.h"

namespace fathom {
namespace {

std::vector<float> randn(std::size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

TensorView view(std::vector<float>& v, Shape s) { return TensorView(v.data(), DType::kF32, s); }
TensorView view(std::vector<int32_t>& v, Shape s) { return TensorView(v.data(), DType::kI32, s); }

void expect_close(const std::vector<float>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (1.0 + std::abs(want[i]))) << "at " << i;
}

// Reference: C = alpha op(A) op(B) + beta C with strides.
void ref_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const std::vector<float>& a, int lda,
              const std::vector<float>& b, int ldb, float beta, std::vector<double>& c, int ldc) {
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int p = 0; p < k; ++p) {
        double av = ta ? a[p * lda + i] : a[i * lda + p];
        double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
        s += av * bv;
      }
      c[i * ldc + j] = alpha * s + beta * c[i * ldc + j];
    }
}

class GemmTest : public ::testing::TestWithParam<std::tuple<bool, bool, bool>> {};

TEST_P(GemmTest, MatchesReference) {
  auto [ta, tb, portable] = GetParam();
  const int m = 37, n = 301, k = 150, pad = 3;  // odd sizes cross the blocking; padded leading dims
  const int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
  auto a = randn(static_cast<std::size_t>((ta ? k : m) * lda), 1);
  auto b = randn(static_cast<std::size_t>((tb ? n : k) * ldb), 2);
  auto c0 = randn(static_cast<std::size_t>(m * ldc), 3);
  std::vector<double> want(c0.begin(), c0.end());
  ref_gemm(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 0.25f, want, ldc);
  std::vector<float> c = c0;
  if (portable)
    cpu::sgemm_portable(ta, tb, m, n, k, 0.5f, a.data(), lda, b.data(), ldb, 0.25f, c.data(), ldc);
  else
    cpu::sgemm(ta, tb, m, n, k, 0.5f, a.data(), lda, b.data(), ldb, 0.25f, c.data(), ldc);
  expect_close(c, want, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(AllTransposes, GemmTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(), ::testing::Bool()));

TEST(Ops, LinearWithBias) {
  CpuExecContext cpu;
  const int m = 9, k = 40, n = 24;
  auto x = randn(m * k, 4), w = randn(n * k, 5), bias = randn(n, 6);
  std::vector<float> y(m * n);
  auto bv = view(bias, Shape{n});
  ASSERT_TRUE(ops::linear(cpu.ctx(), view(x, Shape{3, 3, k}), view(w, Shape{n, k}), &bv, view(y, Shape{m, n})).ok());
  std::vector<double> want(m * n);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double s = bias[j];
      for (int p = 0; p < k; ++p) s += static_cast<double>(x[i * k + p]) * w[j * k + p];
      want[i * n + j] = s;
    }
  expect_close(y, want, 1e-5);
  // Shape errors are reported, not crashed on.
  auto bad = ops::linear(cpu.ctx(), view(x, Shape{m, k}), view(w, Shape{n, k}), nullptr, view(y, Shape{n, m}));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("`y`"), std::string::npos);
}

TEST(Ops, MatmulTransposed) {
  CpuExecContext cpu;
  auto a = randn(6 * 4, 7), b = randn(5 * 6, 8);
  std::vector<float> c(4 * 5);
  ASSERT_TRUE(ops::matmul(cpu.ctx(), view(a, Shape{6, 4}), true, view(b, Shape{5, 6}), true, view(c, Shape{4, 5})).ok());
  std::vector<double> want(20);
  ref_gemm(true, true, 4, 5, 6, 1.0f, a, 4, b, 6, 0.0f, want, 5);
  expect_close(c, want, 1e-5);
  EXPECT_FALSE(ops::matmul(cpu.ctx(), view(a, Shape{6, 4}), false, view(b, Shape{5, 6}), false, view(c, Shape{4, 5})).ok());
}

TEST(Ops, GeluBothForms) {
  CpuExecContext cpu;
  auto x = randn(5000, 9, 3.0f);
  for (auto mode : {ops::GeluMode::kErf, ops::GeluMode::kTanh}) {
    std::vector<float> y(x.size());
    ASSERT_TRUE(ops::gelu(cpu.ctx(), view(x, Shape{50, 100}), view(y, Shape{50, 100}), mode).ok());
    std::vector<double> want(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      double v = x[i];
      want[i] = mode == ops::GeluMode::kErf ? 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)))
                                            : 0.5 * v * (1 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
    }
    expect_close(y, want, 1e-6);
  }
  // The two forms really differ (the test would not notice a swapped mode otherwise).
  std::vector<float> one{1.5f}, e(1), t(1);
  ASSERT_TRUE(ops::gelu(cpu.ctx(), view(one, Shape{1}), view(e, Shape{1}), ops::GeluMode::kErf).ok());
  ASSERT_TRUE(ops::gelu(cpu.ctx(), view(one, Shape{1}), view(t, Shape{1}), ops::GeluMode::kTanh).ok());
  EXPECT_GT(std::abs(e[0] - t[0]), 1e-5);
}

TEST(Ops, BiasAddAndAdd) {
  CpuExecContext cpu;
  auto x = randn(12, 10), b = randn(4, 11), y = randn(12, 12);
  std::vector<double> want(12);
  for (int i = 0; i < 12; ++i) want[i] = static_cast<double>(x[i]) + b[i % 4] + y[i];
  ASSERT_TRUE(ops::bias_add(cpu.ctx(), view(x, Shape{3, 4}), view(b, Shape{4})).ok());
  ASSERT_TRUE(ops::add(cpu.ctx(), view(x, Shape{3, 4}), view(y, Shape{3, 4}), view(x, Shape{3, 4})).ok());
  expect_close(x, want, 1e-6);
  EXPECT_FALSE(ops::bias_add(cpu.ctx(), view(x, Shape{3, 4}), view(b, Shape{3})).ok());
}

TEST(Ops, LayerNormWithAndWithoutResidual) {
  CpuExecContext cpu;
  const int rows = 7, h = 96;
  auto x = randn(rows * h, 13, 2.0f), r = randn(rows * h, 14), g = randn(h, 15), b = randn(h, 16);
  for (bool with_res : {false, true}) {
    std::vector<float> out(rows * h);
    auto rv = view(r, Shape{rows, h});
    ASSERT_TRUE(ops::layer_norm(cpu.ctx(), view(x, Shape{rows, h}), with_res ? &rv : nullptr, view(g, Shape{h}),
                                view(b, Shape{h}), 1e-5f, view(out, Shape{rows, h}))
                    .ok());
    std::vector<double> want(rows * h);
    for (int i = 0; i < rows; ++i) {
      double mean = 0, var = 0;
      std::vector<double> v(h);
      for (int j = 0; j < h; ++j) v[j] = x[i * h + j] + (with_res ? r[i * h + j] : 0.0), mean += v[j];
      mean /= h;
      for (int j = 0; j < h; ++j) var += (v[j] - mean) * (v[j] - mean);
      var /= h;
      for (int j = 0; j < h; ++j) want[i * h + j] = (v[j] - mean) / std::sqrt(var + 1e-5) * g[j] + b[j];
    }
    expect_close(out, want, 1e-5);
  }
}

TEST(Ops, SoftmaxAndL2Normalize) {
  CpuExecContext cpu;
  auto x = randn(4 * 33, 17, 4.0f);
  std::vector<float> s(x.size()), n(x.size());
  ASSERT_TRUE(ops::softmax(cpu.ctx(), view(x, Shape{4, 33}), view(s, Shape{4, 33})).ok());
  ASSERT_TRUE(ops::l2_normalize(cpu.ctx(), view(x, Shape{4, 33}), view(n, Shape{4, 33})).ok());
  std::vector<double> ws(x.size()), wn(x.size());
  for (int i = 0; i < 4; ++i) {
    double mx = -1e30, sum = 0, sq = 0;
    for (int j = 0; j < 33; ++j) mx = std::max(mx, static_cast<double>(x[i * 33 + j]));
    for (int j = 0; j < 33; ++j) sum += std::exp(x[i * 33 + j] - mx), sq += static_cast<double>(x[i * 33 + j]) * x[i * 33 + j];
    for (int j = 0; j < 33; ++j) ws[i * 33 + j] = std::exp(x[i * 33 + j] - mx) / sum, wn[i * 33 + j] = x[i * 33 + j] / std::sqrt(sq);
  }
  expect_close(s, ws, 1e-6);
  expect_close(n, wn, 1e-6);
  std::vector<float> zero(8, 0.0f);
  ASSERT_TRUE(ops::l2_normalize(cpu.ctx(), view(zero, Shape{8}), view(zero, Shape{8})).ok());
  for (float z : zero) EXPECT_EQ(z, 0.0f);  // no NaN from a zero vector
}

TEST(Ops, EmbeddingsGatherAndAdd) {
  CpuExecContext cpu;
  const int v = 11, p = 9, h = 6;
  auto word = randn(v * h, 18), pos = randn(p * h, 19), type = randn(2 * h, 20);
  std::vector<int32_t> ids{3, 10, 0, 7}, positions{2, 3, 4, 8}, types{0, 1, 1, 0};
  std::vector<float> out(4 * h);
  auto pv = view(pos, Shape{p, h}), tv = view(type, Shape{2, h});
  auto posv = view(positions, Shape{4});
  ops::EmbeddingTables tables{view(word, Shape{v, h}), &pv, &tv};
  for (bool with_types : {false, true}) {
    auto typesv = view(types, Shape{4});
    ASSERT_TRUE(ops::embed_tokens(cpu.ctx(), view(ids, Shape{4}), &posv, with_types ? &typesv : nullptr, tables,
                                  view(out, Shape{4, h}))
                    .ok());
    std::vector<double> want(4 * h);
    for (int t = 0; t < 4; ++t)
      for (int c = 0; c < h; ++c)
        want[t * h + c] = static_cast<double>(word[ids[t] * h + c]) + pos[positions[t] * h + c] +
                          type[(with_types ? types[t] : 0) * h + c];
    expect_close(out, want, 1e-6);
  }
  ids[1] = v;  // out of range
  auto bad = ops::embed_tokens(cpu.ctx(), view(ids, Shape{4}), &posv, nullptr, tables, view(out, Shape{4, h}));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("token id 11"), std::string::npos);
}

TEST(Ops, AttentionVarlenMatchesPerSequenceNaive) {
  CpuExecContext cpu;
  const int heads = 3, d = 8, hidden = heads * d;
  std::vector<int> lengths{1, 7, 0, 33, 17};
  auto batch = ops::VarlenBatch::from_lengths(lengths);
  const int total = batch.total();
  auto qkv = randn(static_cast<std::size_t>(total) * 3 * hidden, 21);
  std::vector<float> out(static_cast<std::size_t>(total) * hidden, -7.0f);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  ASSERT_TRUE(ops::attention_varlen(cpu.ctx(), view(qkv, Shape{total, 3 * hidden}), batch, heads, d, scale,
                                    view(out, Shape{total, hidden}))
                  .ok());
  std::vector<double> want(out.size());
  for (int b = 0; b < batch.batch(); ++b) {
    const int s = batch.cu_seqlens[b], len = lengths[b];
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < len; ++i) {
        std::vector<double> sc(len);
        double mx = -1e30;
        for (int j = 0; j < len; ++j) {
          double dot = 0;
          for (int c = 0; c < d; ++c)
            dot += static_cast<double>(qkv[(s + i) * 3 * hidden + h * d + c]) * qkv[(s + j) * 3 * hidden + hidden + h * d + c];
          sc[j] = dot * scale;
          mx = std::max(mx, sc[j]);
        }
        double sum = 0;
        for (double& x : sc) sum += (x = std::exp(x - mx));
        for (int c = 0; c < d; ++c) {
          double o = 0;
          for (int j = 0; j < len; ++j) o += sc[j] / sum * qkv[(s + j) * 3 * hidden + 2 * hidden + h * d + c];
          want[(s + i) * hidden + h * d + c] = o;
        }
      }
  }
  expect_close(out, want, 1e-5);
  // A batch whose max_seqlen understates a sequence is rejected.
  batch.max_seqlen = 5;
  EXPECT_FALSE(ops::attention_varlen(cpu.ctx(), view(qkv, Shape{total, 3 * hidden}), batch, heads, d, scale,
                                     view(out, Shape{total, hidden}))
                   .ok());
}

TEST(Ops, PoolingAllModes) {
  CpuExecContext cpu;
  const int h = 5;
  std::vector<int> lengths{3, 1, 4};
  auto batch = ops::VarlenBatch::from_lengths(lengths);
  auto hidden = randn(8 * h, 22);
  for (auto mode : {ops::PoolingMode::kCls, ops::PoolingMode::kMean, ops::PoolingMode::kMax, ops::PoolingMode::kLastToken}) {
    std::vector<float> out(3 * h);
    ASSERT_TRUE(ops::pool(cpu.ctx(), view(hidden, Shape{8, h}), batch, mode, view(out, Shape{3, h})).ok());
    std::vector<double> want(3 * h);
    for (int b = 0; b < 3; ++b) {
      int s = batch.cu_seqlens[b], e = batch.cu_seqlens[b + 1];
      for (int c = 0; c < h; ++c) {
        double acc = mode == ops::PoolingMode::kMax ? -1e30 : 0.0;
        for (int t = s; t < e; ++t) {
          double v = hidden[t * h + c];
          if (mode == ops::PoolingMode::kMax) acc = std::max(acc, v);
          else acc += v;
        }
        if (mode == ops::PoolingMode::kMean) acc /= (e - s);
        if (mode == ops::PoolingMode::kCls) acc = hidden[s * h + c];
        if (mode == ops::PoolingMode::kLastToken) acc = hidden[(e - 1) * h + c];
        want[b * h + c] = acc;
      }
    }
    expect_close(out, want, 1e-6);
  }
  EXPECT_EQ(ops::parse_pooling_mode("lasttoken"), ops::PoolingMode::kLastToken);
  EXPECT_FALSE(ops::parse_pooling_mode("median").has_value());
}

TEST(Ops, ConvertHalfTypes) {
  CpuExecContext cpu;
  auto x = randn(1000, 23, 10.0f);
  std::vector<uint16_t> h(1000), bf(1000);
  std::vector<float> back(1000);
  ASSERT_TRUE(ops::convert(cpu.ctx(), view(x, Shape{1000}), TensorView(h.data(), DType::kF16, Shape{1000})).ok());
  ASSERT_TRUE(ops::convert(cpu.ctx(), view(x, Shape{1000}), TensorView(bf.data(), DType::kBF16, Shape{1000})).ok());
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(h[i], f32_to_f16(x[i]));
    ASSERT_EQ(bf[i], f32_to_bf16(x[i]));
  }
  ASSERT_TRUE(ops::convert(cpu.ctx(), TensorView(h.data(), DType::kF16, Shape{10, 100}), view(back, Shape{1000})).ok());
  for (int i = 0; i < 1000; ++i) ASSERT_NEAR(back[i], x[i], std::abs(x[i]) * 1e-3 + 1e-6);
  ASSERT_TRUE(ops::convert(cpu.ctx(), TensorView(bf.data(), DType::kBF16, Shape{1000}), view(back, Shape{1000})).ok());
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(back[i], bf16_to_f32(bf[i]));
  std::vector<int32_t> ints(1000);
  EXPECT_FALSE(ops::convert(cpu.ctx(), view(ints, Shape{1000}), view(back, Shape{1000})).ok());
}

TEST(Ops, CudaContextIsUnsupportedWithoutTheBackend) {
  ExecContext ctx;
  ctx.device = Device::cuda(0);
  std::vector<float> x(4);
#if !FATHOM_WITH_CUDA
  TensorView v(x.data(), DType::kF32, Shape{4}, Device::cuda(0));
  auto s = ops::gelu(ctx, v, v, ops::GeluMode::kErf);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnsupported);
#endif
  // A CPU tensor handed to a CUDA context is caught whatever the build.
  auto wrong = ops::gelu(ctx, view(x, Shape{4}), view(x, Shape{4}), ops::GeluMode::kErf);
  EXPECT_FALSE(wrong.ok());
}

}  // namespace
}  // namespace fathom
