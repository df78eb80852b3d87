// The decoder-LLM ops on the CPU against direct double-precision loops: rms_norm, silu_mul, qk_norm_rope,
// paged_kv_write + attention_paged (grouped-query, causal, scattered block tables, several sequences),
// attention_varlen_causal against attention_paged, argmax_rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/attention_paged.h"
#include "ops/norm.h"
#include "ops/qk_norm_rope.h"
#include "ops/rows.h"

namespace fathom::ops {
namespace {

std::vector<float> random_values(std::size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

TEST(DecoderOps, RmsNormMatchesDirectLoop) {
  CpuExecContext cpu;
  const int R = 5, C = 37;
  auto x = random_values(R * C, 1), w = random_values(C, 2, 0.5f, 1.5f);
  std::vector<float> out(x.size());
  ASSERT_TRUE(rms_norm(cpu.ctx(), TensorView(x.data(), DType::kF32, Shape{R, C}), TensorView(w.data(), DType::kF32, Shape{C}),
                       1e-6f, TensorView(out.data(), DType::kF32, Shape{R, C})).ok());
  for (int r = 0; r < R; ++r) {
    double ss = 0;
    for (int c = 0; c < C; ++c) ss += double(x[r * C + c]) * x[r * C + c];
    const double inv = 1.0 / std::sqrt(ss / C + 1e-6);
    for (int c = 0; c < C; ++c) EXPECT_NEAR(out[r * C + c], w[c] * x[r * C + c] * inv, 1e-5);
  }
  // In place, and a wrong weight shape is rejected.
  ASSERT_TRUE(rms_norm(cpu.ctx(), TensorView(x.data(), DType::kF32, Shape{R, C}), TensorView(w.data(), DType::kF32, Shape{C}),
                       1e-6f, TensorView(x.data(), DType::kF32, Shape{R, C})).ok());
  EXPECT_EQ(x, out);
  EXPECT_FALSE(rms_norm(cpu.ctx(), TensorView(x.data(), DType::kF32, Shape{R, C}),
                        TensorView(w.data(), DType::kF32, Shape{C - 1}), 1e-6f, TensorView(out.data(), DType::kF32, Shape{R, C}))
                   .ok());
}

TEST(DecoderOps, SiluMulMatchesDirectLoop) {
  CpuExecContext cpu;
  const int R = 3, I = 11;
  auto gu = random_values(R * 2 * I, 3, -4.0f, 4.0f);
  std::vector<float> out(R * I);
  ASSERT_TRUE(silu_mul(cpu.ctx(), TensorView(gu.data(), DType::kF32, Shape{R, 2 * I}),
                       TensorView(out.data(), DType::kF32, Shape{R, I})).ok());
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < I; ++c) {
      const double g = gu[r * 2 * I + c], u = gu[r * 2 * I + I + c];
      EXPECT_NEAR(out[r * I + c], g / (1.0 + std::exp(-g)) * u, 1e-5);
    }
  EXPECT_FALSE(silu_mul(cpu.ctx(), TensorView(gu.data(), DType::kF32, Shape{R, 2 * I}),
                        TensorView(out.data(), DType::kF32, Shape{R, I + 1})).ok());
}

TEST(DecoderOps, QkNormRopeMatchesDirectLoop) {
  CpuExecContext cpu;
  const QkvLayout L{4, 2, 8};
  const int T = 6;
  auto qkv = random_values(static_cast<std::size_t>(T * L.row_width()), 4);
  const auto original = qkv;
  auto qn = random_values(8, 5, 0.5f, 1.5f), kn = random_values(8, 6, 0.5f, 1.5f);
  std::vector<int32_t> pos = {0, 1, 2, 7, 100, 3000};
  std::vector<float> inv(4);
  for (int i = 0; i < 4; ++i) inv[i] = static_cast<float>(1.0 / std::pow(10000.0, 2.0 * i / 8));
  const float scaling = 1.25f;
  TensorView qnv(qn.data(), DType::kF32, Shape{8}), knv(kn.data(), DType::kF32, Shape{8});
  ASSERT_TRUE(qk_norm_rope(cpu.ctx(), TensorView(qkv.data(), DType::kF32, Shape{T, L.row_width()}), L,
                           TensorView(pos.data(), DType::kI32, Shape{T}), TensorView(inv.data(), DType::kF32, Shape{4}),
                           scaling, &qnv, &knv, 1e-6f).ok());
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < L.q_heads + 2 * L.kv_heads; ++h) {
      const float* in = original.data() + t * L.row_width() + h * 8;
      const float* got = qkv.data() + t * L.row_width() + h * 8;
      if (h >= L.q_heads + L.kv_heads) {  // value heads untouched
        for (int d = 0; d < 8; ++d) EXPECT_EQ(got[d], in[d]);
        continue;
      }
      const float* w = h < L.q_heads ? qn.data() : kn.data();
      double ss = 0;
      for (int d = 0; d < 8; ++d) ss += double(in[d]) * in[d];
      std::vector<double> x(8);
      for (int d = 0; d < 8; ++d) x[d] = w[d] * in[d] / std::sqrt(ss / 8 + 1e-6);
      for (int i = 0; i < 4; ++i) {
        const double a = double(pos[t]) * inv[i], c = std::cos(a) * scaling, s = std::sin(a) * scaling;
        EXPECT_NEAR(got[i], x[i] * c - x[i + 4] * s, 2e-4) << t << " " << h;
        EXPECT_NEAR(got[i + 4], x[i + 4] * c + x[i] * s, 2e-4) << t << " " << h;
      }
    }
}

// Three sequences with cached history and new queries (a prefill, a decode step, a continued prompt), their
// blocks scattered over the pool; the reference attends over contiguous per-sequence keys.
TEST(DecoderOps, PagedAttentionMatchesContiguousReference) {
  CpuExecContext cpu;
  const QkvLayout L{6, 2, 16};
  const int block = 4, pool_blocks = 16;
  struct Seq {
    int cached, fresh;
    std::vector<int32_t> blocks;
  };
  std::vector<Seq> seqs = {{0, 7, {9, 2}}, {10, 1, {0, 5, 13}}, {5, 6, {14, 3, 7}}};
  int T = 0;
  for (auto& s : seqs) T += s.fresh;
  const int64_t W = L.row_width(), KW = L.kv_width();
  // Per-sequence full key/value history (cached + new).
  std::vector<std::vector<float>> keys, values;
  std::vector<float> k_pool(static_cast<std::size_t>(pool_blocks * block * KW), NAN), v_pool(k_pool.size(), NAN);
  std::vector<float> qkv(static_cast<std::size_t>(T * W));
  std::vector<int32_t> slots(T), tables;
  std::vector<PagedSeq> desc;
  int row = 0;
  for (std::size_t b = 0; b < seqs.size(); ++b) {
    const Seq& s = seqs[b];
    const int n = s.cached + s.fresh;
    keys.push_back(random_values(static_cast<std::size_t>(n * KW), 10 + b));
    values.push_back(random_values(static_cast<std::size_t>(n * KW), 20 + b));
    auto q = random_values(static_cast<std::size_t>(s.fresh * L.q_width()), 30 + b);
    desc.push_back(PagedSeq{row, s.fresh, n, static_cast<int32_t>(tables.size())});
    tables.insert(tables.end(), s.blocks.begin(), s.blocks.end());
    for (int p = 0; p < n; ++p) {
      const int slot = s.blocks[p / block] * block + p % block;
      if (p < s.cached) {  // history already in the pool
        std::copy_n(keys[b].begin() + p * KW, KW, k_pool.begin() + slot * KW);
        std::copy_n(values[b].begin() + p * KW, KW, v_pool.begin() + slot * KW);
      } else {  // new rows arrive through qkv and paged_kv_write
        float* r = qkv.data() + (row + p - s.cached) * W;
        std::copy_n(q.begin() + (p - s.cached) * L.q_width(), L.q_width(), r);
        std::copy_n(keys[b].begin() + p * KW, KW, r + L.q_width());
        std::copy_n(values[b].begin() + p * KW, KW, r + L.q_width() + KW);
        slots[row + p - s.cached] = slot;
      }
    }
    row += s.fresh;
  }
  TensorView qkv_v(qkv.data(), DType::kF32, Shape{T, W});
  TensorView kp(k_pool.data(), DType::kF32, Shape{pool_blocks * block, KW}), vp(v_pool.data(), DType::kF32, Shape{pool_blocks * block, KW});
  ASSERT_TRUE(paged_kv_write(cpu.ctx(), qkv_v, L, TensorView(slots.data(), DType::kI32, Shape{T}), kp, vp).ok());
  std::vector<float> out(static_cast<std::size_t>(T * L.q_width()), NAN);
  const float scale = 0.25f;
  PagedAttentionBounds bounds{3, 7, T, block};
  ASSERT_TRUE(attention_paged(cpu.ctx(), qkv_v, L, desc.data(), tables.data(), static_cast<int>(tables.size()), bounds, kp, vp,
                              scale, TensorView(out.data(), DType::kF32, Shape{T, L.q_width()})).ok());
  for (std::size_t b = 0; b < seqs.size(); ++b) {
    const Seq& s = seqs[b];
    for (int i = 0; i < s.fresh; ++i) {
      const int r = desc[b].q_start + i, visible = s.cached + i + 1;
      for (int h = 0; h < L.q_heads; ++h) {
        const int g = h / (L.q_heads / L.kv_heads);
        const float* q = qkv.data() + r * W + h * 16;
        std::vector<double> sc(visible);
        double mx = -1e300, sum = 0;
        for (int p = 0; p < visible; ++p) {
          double dot = 0;
          for (int d = 0; d < 16; ++d) dot += double(q[d]) * keys[b][p * KW + g * 16 + d];
          sc[p] = dot * scale;
          mx = std::max(mx, sc[p]);
        }
        for (auto& v : sc) sum += (v = std::exp(v - mx));
        for (int d = 0; d < 16; ++d) {
          double acc = 0;
          for (int p = 0; p < visible; ++p) acc += sc[p] * values[b][p * KW + g * 16 + d];
          EXPECT_NEAR(out[r * L.q_width() + h * 16 + d], acc / sum, 1e-5) << "seq " << b << " query " << i << " head " << h;
        }
      }
    }
  }
  // Out-of-pool blocks and repeated slots are rejected.
  tables[0] = pool_blocks;
  EXPECT_FALSE(attention_paged(cpu.ctx(), qkv_v, L, desc.data(), tables.data(), static_cast<int>(tables.size()), bounds, kp,
                               vp, scale, TensorView(out.data(), DType::kF32, Shape{T, L.q_width()})).ok());
  slots[1] = slots[0];
  EXPECT_FALSE(paged_kv_write(cpu.ctx(), qkv_v, L, TensorView(slots.data(), DType::kI32, Shape{T}), kp, vp).ok());
}

// A prefill of fresh sequences: the causal varlen attention over the packed rows equals the paged attention
// over a cache that holds just those rows (grouped-query heads, head_dim 12, sequences of 7, 1 and 13).
TEST(DecoderOps, CausalVarlenAttentionEqualsPagedOverFreshSequences) {
  CpuExecContext cpu;
  for (const QkvLayout L : {QkvLayout{6, 2, 12}, QkvLayout{4, 4, 8}, QkvLayout{3, 1, 5}}) {
    const std::vector<int> lengths = {7, 1, 13};
    const int block = 4;
    int T = 0;
    for (int n : lengths) T += n;
    const int64_t W = L.row_width();
    std::vector<float> qkv = random_values(static_cast<std::size_t>(T * W), 40 + L.head_dim);
    std::vector<PagedSeq> desc;
    std::vector<int32_t> tables, slots;
    int row = 0, next_block = 0;
    for (int n : lengths) {
      desc.push_back(PagedSeq{row, n, n, static_cast<int32_t>(tables.size())});
      const int blocks = (n + block - 1) / block;
      for (int b = 0; b < blocks; ++b) tables.push_back(next_block + b);
      for (int p = 0; p < n; ++p) slots.push_back(next_block * block + p);
      next_block += blocks;
      row += n;
    }
    const int64_t pool_rows = int64_t{next_block} * block;
    std::vector<float> k_pool(static_cast<std::size_t>(pool_rows * L.kv_width())), v_pool(k_pool.size());
    TensorView qkv_v(qkv.data(), DType::kF32, Shape{T, W});
    TensorView kp(k_pool.data(), DType::kF32, Shape{pool_rows, L.kv_width()});
    TensorView vp(v_pool.data(), DType::kF32, Shape{pool_rows, L.kv_width()});
    ASSERT_TRUE(paged_kv_write(cpu.ctx(), qkv_v, L, TensorView(slots.data(), DType::kI32, Shape{T}), kp, vp).ok());
    std::vector<float> paged(static_cast<std::size_t>(T * L.q_width()), NAN), causal(paged.size(), NAN);
    const float scale = 0.3f;
    const PagedAttentionBounds bounds{3, 13, T, block};
    ASSERT_TRUE(attention_paged(cpu.ctx(), qkv_v, L, desc.data(), tables.data(), static_cast<int>(tables.size()), bounds,
                                kp, vp, scale, TensorView(paged.data(), DType::kF32, Shape{T, L.q_width()})).ok());
    const VarlenBatch batch = VarlenBatch::from_lengths(lengths);
    ASSERT_TRUE(attention_varlen_causal(cpu.ctx(), qkv_v, L, batch, scale,
                                        TensorView(causal.data(), DType::kF32, Shape{T, L.q_width()})).ok());
    for (std::size_t i = 0; i < paged.size(); ++i)
      ASSERT_NEAR(causal[i], paged[i], 1e-5) << "element " << i << " heads " << L.q_heads << "/" << L.kv_heads;
    // A qkv of the wrong width and a head count that is not a multiple of the key heads are refused.
    EXPECT_FALSE(attention_varlen_causal(cpu.ctx(), TensorView(qkv.data(), DType::kF32, Shape{T, W - 1}), L, batch, scale,
                                         TensorView(causal.data(), DType::kF32, Shape{T, L.q_width()})).ok());
    EXPECT_FALSE(attention_varlen_causal(cpu.ctx(), qkv_v, QkvLayout{5, 2, L.head_dim}, batch, scale,
                                         TensorView(causal.data(), DType::kF32, Shape{T, L.q_width()})).ok());
  }
}

TEST(DecoderOps, ArgmaxRowsPicksTheFirstMaximum) {
  CpuExecContext cpu;
  const int R = 4, C = 9;
  std::vector<float> x = random_values(R * C, 7, -5.0f, -1.0f);  // all negative: a zero start would be wrong
  x[0 * C + 3] = 2.0f, x[0 * C + 6] = 2.0f;                     // tie: the lower index wins
  x[1 * C + 8] = 0.5f;                                           // maximum in the last column
  x[2 * C + 0] = 0.0f;                                           // maximum in the first column
  std::vector<int32_t> out(R, -1);
  ASSERT_TRUE(argmax_rows(cpu.ctx(), TensorView(x.data(), DType::kF32, Shape{R, C}),
                          TensorView(out.data(), DType::kI32, Shape{R})).ok());
  EXPECT_EQ(out[0], 3);
  EXPECT_EQ(out[1], 8);
  EXPECT_EQ(out[2], 0);
  EXPECT_EQ(out[3], std::max_element(x.begin() + 3 * C, x.begin() + 4 * C) - (x.begin() + 3 * C));
  // A wrong output shape or dtype is refused.
  EXPECT_FALSE(argmax_rows(cpu.ctx(), TensorView(x.data(), DType::kF32, Shape{R, C}),
                           TensorView(out.data(), DType::kI32, Shape{R - 1})).ok());
  EXPECT_FALSE(argmax_rows(cpu.ctx(), TensorView(x.data(), DType::kF32, Shape{R, C}),
                           TensorView(out.data(), DType::kF32, Shape{R})).ok());
}

}  // namespace
}  // namespace fathom::ops
