// CUDA kernels (GEMM, LayerNorm, embedding, pooling, conversion, allocator) against f64 CPU references.
#if FATHOM_WITH_CUDA  // CUDA-only test; CPU builds compile nothing here
#include <gtest/gtest.h>

#include <cmath>

#include "backends/cuda/allocator.h"
#include "backends/cuda/blas.h"
#include "backends/cuda/kernels.h"
#include "ops/cuda_test_util.h"

namespace fathom::cuda {
namespace {
using namespace test;

TEST(CudaAllocator, ReusesCachedBlocksAndEnforcesCap) {
  FATHOM_REQUIRE_CUDA();
  CachingAllocator pool(0, 8u << 20, "test-pool");
  void* a = pool.allocate(1000);
  void* b = pool.allocate(3u << 20);
  EXPECT_EQ(pool.driver_allocations(), 2u);
  pool.deallocate(a);
  pool.deallocate(b);
  void* c = pool.allocate(900);  // same 1024-byte class: served from cache
  void* d = pool.allocate(3u << 20);
  EXPECT_EQ(pool.driver_allocations(), 2u);
  EXPECT_EQ(c, a);
  EXPECT_EQ(d, b);
  try {
    (void)pool.allocate(6u << 20);
    FAIL() << "allocation over the cap succeeded";
  } catch (const Exception& e) {
    EXPECT_EQ(e.code(), ErrorCode::kOutOfMemory);
    EXPECT_NE(std::string(e.what()).find("test-pool"), std::string::npos);
  }
  pool.deallocate(c);
  pool.deallocate(d);
}

TEST(CudaAllocator, RuntimeInterfaceChargesAccount) {
  FATHOM_REQUIRE_CUDA();
  CudaAllocator alloc(0);
  MemoryAccount account("model-x", 1u << 20);
  auto ok = alloc.allocate(512u << 10, &account);
  ASSERT_TRUE(ok.ok());
  auto over = alloc.allocate(768u << 10, &account);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, ErrorCode::kOutOfMemory);
  std::vector<float> host(1000, 1.5f), back(1000, 0.f);
  ASSERT_TRUE(alloc.copy_from_host(*ok, host.data(), 4000).ok());
  ASSERT_TRUE(alloc.copy_to_host(back.data(), *ok, 4000).ok());
  EXPECT_EQ(back[999], 1.5f);
  alloc.deallocate(*ok, 512u << 10, &account);
  EXPECT_EQ(account.in_use(), 0u);
}

TEST(CudaConvert, RoundTripsMatchHostConversions) {
  FATHOM_REQUIRE_CUDA();
  std::mt19937 rng(1);
  auto x = random_vec(4097, DType::kF32, rng, 3.f);
  x[0] = 65504.f * 2;  // overflows f16
  x[1] = 1e-6f;        // f16 subnormal
  DevMem src = upload(x, DType::kF32);
  for (DType d : {DType::kF16, DType::kBF16}) {
    DevMem mid(x.size() * 2), back(x.size() * 4);
    convert(DType::kF32, src.get(), d, mid.get(), x.size(), nullptr);
    convert(d, mid.get(), DType::kF32, back.get(), x.size(), nullptr);
    auto got = download(back.get(), x.size(), DType::kF32);
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float want = round_to(d, x[i]);
      ASSERT_TRUE(got[i] == want || (std::isinf(got[i]) && std::isinf(want))) << dtype_name(d) << " at " << i;
    }
  }
}

// f64 reference of act(x[m, k] * w[n, k]^T + bias).
std::vector<double> linear_reference(const std::vector<float>& x, const std::vector<float>& w,
                                     const std::vector<float>* bias, int m, int n, int k, Activation act) {
  std::vector<double> ref(static_cast<std::size_t>(m) * n);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int t = 0; t < k; ++t) s += static_cast<double>(x[i * k + t]) * w[j * k + t];
      if (bias) s += (*bias)[j];
      if (act == Activation::kGeluErf) s = 0.5 * s * (1 + std::erf(s / std::sqrt(2.0)));
      if (act == Activation::kGeluTanh) s = 0.5 * s * (1 + std::tanh(std::sqrt(2.0 / M_PI) * (s + 0.044715 * s * s * s)));
      ref[static_cast<std::size_t>(i) * n + j] = s;
    }
  return ref;
}

struct GemmCase {
  bool bias;
  Activation act;
  bool residual;
};

TEST(CudaGemm, MatchesReferenceForEveryDtypeAndEpilogue) {
  FATHOM_REQUIRE_CUDA();
  BlasLt blas(0);
  const int m = 37, n = 96, k = 200;
  const GemmCase cases[] = {{false, Activation::kNone, false}, {true, Activation::kNone, false},
                            {true, Activation::kGeluErf, false}, {true, Activation::kGeluTanh, false},
                            {true, Activation::kNone, true}, {false, Activation::kNone, true}};
  for (DType d : kFloatTypes) {
    for (const GemmCase& c : cases) {
      std::mt19937 rng(7);
      auto x = random_vec(static_cast<std::size_t>(m) * k, d, rng);
      auto w = random_vec(static_cast<std::size_t>(n) * k, d, rng, 0.1f);
      auto b = random_vec(n, d, rng);
      auto r = random_vec(static_cast<std::size_t>(m) * n, d, rng);
      DevMem dx = upload(x, d), dw = upload(w, d), db = upload(b, d), dr = upload(r, d);
      DevMem dy(static_cast<std::size_t>(m) * n * dtype_size(d));
      dy.poison();
      GemmParams p;
      p.dtype = d;
      p.m = m; p.n = n; p.k = k;
      p.x = dx.get(); p.ldx = k;
      p.w = dw.get(); p.ldw = k;
      p.bias = c.bias ? db.get() : nullptr;
      p.residual = c.residual ? dr.get() : nullptr;
      p.ldr = n;
      p.y = dy.get(); p.ldy = n;
      p.act = c.act;
      blas.gemm(p, nullptr);
      auto got = download(dy.get(), static_cast<std::size_t>(m) * n, d);
      std::vector<double> ref = linear_reference(x, w, c.bias ? &b : nullptr, m, n, k, c.act);
      if (c.residual)
        for (std::size_t i = 0; i < ref.size(); ++i) ref[i] += r[i];
      EXPECT_LT(rel_l2(got, ref), tolerance(d) * (d == DType::kF32 ? 1 : 1))
          << dtype_name(d) << " bias=" << c.bias << " act=" << static_cast<int>(c.act) << " res=" << c.residual;
    }
  }
}

TEST(CudaGemm, RejectsInPlaceResidualWithOtherStride) {
  FATHOM_REQUIRE_CUDA();
  BlasLt blas(0);
  DevMem a(64 * 64 * 4);
  GemmParams p;
  p.m = p.n = p.k = 64;
  p.x = p.w = a.get();
  p.ldx = p.ldw = p.ldy = 64;
  p.ldr = 128;
  p.y = a.get();
  p.residual = a.get();
  EXPECT_THROW(blas.gemm(p, nullptr), Exception);
}

TEST(CudaLayerNorm, ResidualFusedMatchesReference) {
  FATHOM_REQUIRE_CUDA();
  for (DType d : kFloatTypes) {
    for (int cols : {33, 384, 1024, 3000}) {
      const int rows = 19;
      std::mt19937 rng(cols);
      auto x = random_vec(static_cast<std::size_t>(rows) * cols, d, rng, 2.f);
      auto r = random_vec(static_cast<std::size_t>(rows) * cols, d, rng);
      auto g = random_vec(cols, d, rng);
      auto b = random_vec(cols, d, rng);
      for (int with_res = 0; with_res < 2; ++with_res) {
        DevMem dx = upload(x, d), dr = upload(r, d), dg = upload(g, d), db = upload(b, d);
        LayerNormParams p;
        p.dtype = d;
        p.rows = rows; p.cols = cols;
        p.in = dx.get(); p.ld_in = cols;
        p.residual = with_res ? dr.get() : nullptr; p.ld_residual = cols;
        p.gamma = dg.get(); p.beta = db.get();
        p.out = dx.get(); p.ld_out = cols;  // in place
        p.eps = 1e-5f;
        layer_norm(p, nullptr);
        auto got = download(dx.get(), x.size(), d);
        std::vector<double> ref(x.size());
        for (int i = 0; i < rows; ++i) {
          double mean = 0, var = 0;
          std::vector<double> v(cols);
          for (int c = 0; c < cols; ++c) v[c] = x[i * cols + c] + (with_res ? r[i * cols + c] : 0.0);
          for (double e : v) mean += e;
          mean /= cols;
          for (double e : v) var += (e - mean) * (e - mean);
          var /= cols;
          for (int c = 0; c < cols; ++c) ref[i * cols + c] = (v[c] - mean) / std::sqrt(var + 1e-5) * g[c] + b[c];
        }
        EXPECT_LT(rel_l2(got, ref), tolerance(d)) << dtype_name(d) << " cols=" << cols << " res=" << with_res;
      }
    }
  }
}

TEST(CudaEmbedding, GatherSumsAndNormalizes) {
  FATHOM_REQUIRE_CUDA();
  const int vocab = 50, maxpos = 20, types = 2, hidden = 96, tokens = 23;
  std::vector<int32_t> ids(tokens), pos(tokens), typ(tokens);
  for (int t = 0; t < tokens; ++t) {
    ids[t] = (t * 7 + 3) % vocab;
    pos[t] = t % maxpos;
    typ[t] = t % 2;
  }
  for (DType d : kFloatTypes) {
    std::mt19937 rng(3);
    auto we = random_vec(static_cast<std::size_t>(vocab) * hidden, d, rng);
    auto pe = random_vec(static_cast<std::size_t>(maxpos) * hidden, d, rng);
    auto te = random_vec(static_cast<std::size_t>(types) * hidden, d, rng);
    auto g = random_vec(hidden, d, rng), b = random_vec(hidden, d, rng);
    DevMem dwe = upload(we, d), dpe = upload(pe, d), dte = upload(te, d), dg = upload(g, d), db = upload(b, d);
    DevMem dids = upload_ints(ids), dpos = upload_ints(pos), dtyp = upload_ints(typ);
    DevMem out(static_cast<std::size_t>(tokens) * hidden * dtype_size(d));
    out.poison();
    EmbeddingParams p;
    p.dtype = d;
    p.tokens = tokens; p.hidden = hidden;
    p.ids = dids.as<int32_t>(); p.position_ids = dpos.as<int32_t>(); p.token_type_ids = dtyp.as<int32_t>();
    p.word = dwe.get(); p.vocab = vocab;
    p.position = dpe.get(); p.max_positions = maxpos;
    p.token_type = dte.get(); p.type_vocab = types;
    p.gamma = dg.get(); p.beta = db.get(); p.eps = 1e-12f;
    p.out = out.get();
    embedding_layer_norm(p, nullptr);
    auto got = download(out.get(), static_cast<std::size_t>(tokens) * hidden, d);
    std::vector<double> ref(got.size());
    for (int t = 0; t < tokens; ++t) {
      std::vector<double> v(hidden);
      double mean = 0, var = 0;
      for (int c = 0; c < hidden; ++c) {
        v[c] = static_cast<double>(we[ids[t] * hidden + c]) + pe[pos[t] * hidden + c] + te[typ[t] * hidden + c];
        mean += v[c];
      }
      mean /= hidden;
      for (double e : v) var += (e - mean) * (e - mean);
      var /= hidden;
      for (int c = 0; c < hidden; ++c) ref[t * hidden + c] = (v[c] - mean) / std::sqrt(var + 1e-12) * g[c] + b[c];
    }
    EXPECT_LT(rel_l2(got, ref), tolerance(d)) << dtype_name(d);
  }
}

TEST(CudaPooling, AllModesWithAndWithoutNormalization) {
  FATHOM_REQUIRE_CUDA();
  const std::vector<std::vector<int32_t>> seqs = {{1, 2, 3}, {4}, {5, 6, 7, 8, 9, 10, 11}, {12, 13}};
  VarlenLayout layout{8, 32};
  std::vector<int32_t> meta(layout.total_ints());
  const int total = fill_varlen(layout, seqs, 0, 0, meta.data());
  DevMem dmeta = upload_ints(meta);
  VarlenView view = varlen_view(layout, dmeta.as<int32_t>());
  const int hidden = 300;
  for (DType d : kFloatTypes) {
    std::mt19937 rng(5);
    auto x = random_vec(static_cast<std::size_t>(layout.max_tokens) * hidden, d, rng);
    DevMem dx = upload(x, d);
    for (PoolMode mode : {PoolMode::kCls, PoolMode::kMean, PoolMode::kMax, PoolMode::kLast}) {
      for (bool norm : {false, true}) {
        DevMem out(static_cast<std::size_t>(layout.max_seqs) * hidden * 4);
        out.poison();
        PoolParams p;
        p.dtype = d; p.mode = mode; p.hidden = hidden;
        p.in = dx.get(); p.ld_in = hidden;
        p.out = out.as<float>(); p.normalize = norm;
        p.batch = view;
        pool(p, nullptr);
        auto got = download(out.get(), seqs.size() * hidden, DType::kF32);
        std::vector<double> ref(got.size());
        int beg = 0;
        for (std::size_t s = 0; s < seqs.size(); ++s) {
          const int end = beg + static_cast<int>(seqs[s].size());
          double sq = 0;
          for (int c = 0; c < hidden; ++c) {
            double v = 0;
            if (mode == PoolMode::kCls) v = x[beg * hidden + c];
            if (mode == PoolMode::kLast) v = x[(end - 1) * hidden + c];
            if (mode == PoolMode::kMean) { for (int t = beg; t < end; ++t) v += x[t * hidden + c]; v /= end - beg; }
            if (mode == PoolMode::kMax) { v = -1e30; for (int t = beg; t < end; ++t) v = std::max<double>(v, x[t * hidden + c]); }
            ref[s * hidden + c] = v;
            sq += v * v;
          }
          if (norm)
            for (int c = 0; c < hidden; ++c) ref[s * hidden + c] /= std::sqrt(sq);
          beg = end;
        }
        EXPECT_EQ(beg, total);
        EXPECT_LT(rel_l2(got, ref), 1e-6) << dtype_name(d) << " mode=" << static_cast<int>(mode) << " norm=" << norm;
      }
    }
  }
}

TEST(CudaL2Normalize, UnitNormRows) {
  FATHOM_REQUIRE_CUDA();
  std::mt19937 rng(9);
  auto x = random_vec(5 * 77, DType::kF32, rng);
  DevMem dx = upload(x, DType::kF32);
  l2_normalize(dx.as<float>(), 5, 77, 77, nullptr);
  auto got = download(dx.get(), x.size(), DType::kF32);
  std::vector<double> ref(x.size());
  for (int r = 0; r < 5; ++r) {
    double s = 0;
    for (int c = 0; c < 77; ++c) s += static_cast<double>(x[r * 77 + c]) * x[r * 77 + c];
    for (int c = 0; c < 77; ++c) ref[r * 77 + c] = x[r * 77 + c] / std::sqrt(s);
  }
  EXPECT_LT(rel_l2(got, ref), 1e-6);
}

TEST(CudaKernels, BadParametersThrowInvalidArgument) {
  FATHOM_REQUIRE_CUDA();
  LayerNormParams p;
  p.rows = 1; p.cols = 9000;
  try {
    layer_norm(p, nullptr);
    FAIL();
  } catch (const Exception& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
  AttentionParams a;
  a.head_dim = 130;
  EXPECT_THROW(attention_varlen(a, nullptr), Exception);
}

}  // namespace
}  // namespace fathom::cuda

#endif  // FATHOM_WITH_CUDA
