// The encoder ops (rotary_qk, gated_activation, attention_varlen with a distance bias and a sliding
// window) on the CPU against naive f64 references.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <vector>

#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/rotary.h"
#include "runtime/exec_context.h"

namespace fathom::ops {
namespace {

std::vector<float> randn(std::size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}
TensorView view(std::vector<float>& v, Shape s) { return TensorView(v.data(), DType::kF32, s); }
TensorView view(std::vector<int32_t>& v, Shape s) { return TensorView(v.data(), DType::kI32, s); }

TEST(EncoderOps, RotaryRotatesHalvesOfQAndKOnly) {
  CpuExecContext cpu;
  const int tokens = 5, heads = 2, d = 8, rot = 6, hidden = heads * d;
  auto qkv = randn(static_cast<std::size_t>(tokens) * 3 * hidden, 1);
  const auto before = qkv;
  std::vector<int32_t> pos{0, 1, 2, 7, 40};
  std::vector<float> inv{1.0f, 0.1f, 0.01f};
  ASSERT_TRUE(rotary_qk(cpu.ctx(), view(qkv, Shape{tokens, 3 * hidden}), view(pos, Shape{tokens}), heads, d, rot,
                        view(inv, Shape{rot / 2}))
                  .ok());
  for (int t = 0; t < tokens; ++t)
    for (int part = 0; part < 3; ++part)
      for (int h = 0; h < heads; ++h)
        for (int c = 0; c < d; ++c) {
          const std::size_t base = static_cast<std::size_t>(t) * 3 * hidden + part * hidden + h * d;
          double want = before[base + c];
          if (part < 2 && c < rot) {
            const int i = c % (rot / 2);
            const double a = static_cast<double>(pos[t]) * inv[i];
            const double x1 = before[base + i], x2 = before[base + i + rot / 2];
            want = c < rot / 2 ? x1 * std::cos(a) - x2 * std::sin(a) : x2 * std::cos(a) + x1 * std::sin(a);
          }
          EXPECT_NEAR(qkv[base + c], want, 2e-5) << "t " << t << " part " << part << " h " << h << " c " << c;
        }
  // An odd rotary size is rejected.
  EXPECT_FALSE(rotary_qk(cpu.ctx(), view(qkv, Shape{tokens, 3 * hidden}), view(pos, Shape{tokens}), heads, d, 5,
                         view(inv, Shape{2}))
                   .ok());
}

TEST(EncoderOps, GatedActivationBothOrders) {
  CpuExecContext cpu;
  const int rows = 3, n = 10;
  auto x = randn(static_cast<std::size_t>(rows) * 2 * n, 2, 2.0f);
  std::vector<float> y(static_cast<std::size_t>(rows) * n);
  auto act = [](double v, GatedActivation a) {
    switch (a) {
      case GatedActivation::kSilu: return v / (1 + std::exp(-v));
      case GatedActivation::kGeluErf: return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
      default: return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    }
  };
  for (GatedActivation a : {GatedActivation::kSilu, GatedActivation::kGeluErf, GatedActivation::kGeluTanh})
    for (bool first : {true, false}) {
      ASSERT_TRUE(gated_activation(cpu.ctx(), view(x, Shape{rows, 2 * n}), view(y, Shape{rows, n}), a, first).ok());
      for (int r = 0; r < rows; ++r)
        for (int c = 0; c < n; ++c) {
          const double u = x[r * 2 * n + c], g = x[r * 2 * n + n + c];
          const double want = first ? act(u, a) * g : u * act(g, a);
          EXPECT_NEAR(y[r * n + c], want, 1e-5) << static_cast<int>(a) << " " << first;
        }
    }
  EXPECT_FALSE(gated_activation(cpu.ctx(), view(x, Shape{rows, 2 * n}), view(x, Shape{rows, n}),
                                GatedActivation::kSilu, true)
                   .ok());  // y aliasing x
}

// Naive attention with an additive distance bias and a window (f64).
std::vector<double> naive(const std::vector<float>& qkv, const std::vector<int>& lengths, int heads, int d, float scale,
                          const std::vector<float>* bias, int span, int window_half) {
  const int hidden = heads * d;
  int total = 0;
  for (int l : lengths) total += l;
  std::vector<double> out(static_cast<std::size_t>(total) * hidden);
  int s = 0;
  for (int len : lengths) {
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < len; ++i) {
        std::vector<double> sc(len, -INFINITY);
        double mx = -INFINITY;
        for (int j = 0; j < len; ++j) {
          if (window_half >= 0 && std::abs(j - i) > window_half) continue;
          double dot = 0;
          for (int c = 0; c < d; ++c)
            dot += static_cast<double>(qkv[(s + i) * 3 * hidden + h * d + c]) * qkv[(s + j) * 3 * hidden + hidden + h * d + c];
          sc[j] = dot * scale + (bias ? (*bias)[h * (2 * span - 1) + (j - i) + span - 1] : 0.0);
          mx = std::max(mx, sc[j]);
        }
        double sum = 0;
        for (double& x : sc) sum += (x = std::isinf(x) ? 0.0 : std::exp(x - mx));
        for (int c = 0; c < d; ++c) {
          double o = 0;
          for (int j = 0; j < len; ++j) o += sc[j] / sum * qkv[(s + j) * 3 * hidden + 2 * hidden + h * d + c];
          out[(s + i) * hidden + h * d + c] = o;
        }
      }
    s += len;
  }
  return out;
}

TEST(EncoderOps, AttentionWithDistanceBiasAndWindow) {
  CpuExecContext cpu;
  const int heads = 2, d = 8, hidden = heads * d, span = 40;
  std::vector<int> lengths{1, 9, 33, 0, 17};
  auto batch = VarlenBatch::from_lengths(lengths);
  const int total = batch.total();
  auto qkv = randn(static_cast<std::size_t>(total) * 3 * hidden, 3);
  auto bias_v = randn(static_cast<std::size_t>(heads) * (2 * span - 1), 4);
  TensorView bias = view(bias_v, Shape{heads, 2 * span - 1});
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  struct Case {
    bool bias;
    int window;
  };
  for (Case c : {Case{true, -1}, Case{false, 3}, Case{true, 4}, Case{false, 0}}) {
    std::vector<float> out(static_cast<std::size_t>(total) * hidden, -7.0f);
    AttentionExtras extras;
    if (c.bias) {
      extras.distance_bias = &bias;
      extras.span = span;
    }
    extras.window_half = c.window;
    ASSERT_TRUE(attention_varlen(cpu.ctx(), view(qkv, Shape{total, 3 * hidden}), batch, heads, d, scale,
                                 view(out, Shape{total, hidden}), extras)
                    .ok());
    const auto want = naive(qkv, lengths, heads, d, scale, c.bias ? &bias_v : nullptr, span, c.window);
    for (std::size_t i = 0; i < out.size(); ++i)
      ASSERT_NEAR(out[i], want[i], 1e-5) << "bias " << c.bias << " window " << c.window << " at " << i;
  }
  // A sequence longer than the bias span is rejected.
  AttentionExtras short_span;
  std::vector<float> small(static_cast<std::size_t>(heads) * 9);
  TensorView small_bias = view(small, Shape{heads, 9});
  short_span.distance_bias = &small_bias;
  short_span.span = 5;
  std::vector<float> out(static_cast<std::size_t>(total) * hidden);
  EXPECT_FALSE(attention_varlen(cpu.ctx(), view(qkv, Shape{total, 3 * hidden}), batch, heads, d, scale,
                                view(out, Shape{total, hidden}), short_span)
                   .ok());
}

}  // namespace
}  // namespace fathom::ops
