// Every op x dtype on CUDA (through the src/ops dispatch) against the same op on the CPU in float32.
#if FATHOM_WITH_CUDA  // CUDA-only test; CPU builds compile nothing here
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backends/cuda/context.h"
#include "backends/cuda/varlen.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/convert.h"
#include "ops/cuda_test_util.h"
#include "ops/embedding.h"
#include "ops/gemm.h"
#include "ops/norm.h"
#include "ops/pooling.h"
#include "runtime/exec_context.h"

namespace fathom::cuda {
namespace {
using namespace test;

double op_tolerance(DType d) { return d == DType::kF32 ? 1e-5 : d == DType::kF16 ? 3e-3 : 2e-2; }

// A CPU f32 tensor and its CUDA twin in `dtype` (same dtype-rounded values).
struct Pair {
  std::vector<float> host;
  TensorView cpu;
  Buffer dev_buf;
  TensorView dev;
};

class CudaOps : public ::testing::Test {
 protected:
  void SetUp() override {
    if (device_count() == 0) GTEST_SKIP() << "no CUDA device";
    gpu_ = std::make_unique<CudaExecContext>(0);
  }

  Pair make(DType d, Shape shape, float scale = 1.f, uint32_t seed = 1) {
    std::mt19937 rng(seed);
    std::size_t n = static_cast<std::size_t>(shape.numel());
    return from(random_vec(n, d, rng, scale), d, shape);
  }
  Pair from(std::vector<float> v, DType d, Shape shape) {
    Pair p;
    p.host = std::move(v);
    p.cpu = TensorView(p.host.data(), DType::kF32, shape);
    p.dev_buf = std::move(Buffer::allocate(device_allocator(0), std::max<std::size_t>(1, p.host.size()) * dtype_size(d)).value());
    DevMem staged = upload(p.host, d);
    FATHOM_CUDA_CHECK(cudaMemcpy(p.dev_buf.data(), staged.get(), p.host.size() * dtype_size(d), cudaMemcpyDeviceToDevice));
    p.dev = TensorView(p.dev_buf.data(), d, shape, Device::cuda(0));
    return p;
  }
  Pair zeros(DType d, Shape shape) {
    Pair p = from(std::vector<float>(static_cast<std::size_t>(shape.numel()), 0.f), d, shape);
    FATHOM_CUDA_CHECK(cudaMemset(p.dev.data, 0xFF, p.dev.nbytes()));  // poison
    return p;
  }
  Pair ints(const std::vector<int32_t>& v) {
    Pair p;
    p.host.resize(v.size());
    std::memcpy(p.host.data(), v.data(), v.size() * 4);
    p.cpu = TensorView(p.host.data(), DType::kI32, Shape{static_cast<int64_t>(v.size())});
    p.dev_buf = std::move(Buffer::allocate(device_allocator(0), v.size() * 4).value());
    FATHOM_CUDA_CHECK(cudaMemcpy(p.dev_buf.data(), v.data(), v.size() * 4, cudaMemcpyHostToDevice));
    p.dev = TensorView(p.dev_buf.data(), DType::kI32, p.cpu.shape, Device::cuda(0));
    return p;
  }
  // Compares the CUDA result with the CPU one.
  void expect_close(const Pair& p, DType d, const char* what) {
    gpu_->synchronize();
    auto got = download(p.dev.data, p.host.size(), d);
    std::vector<double> ref(p.host.begin(), p.host.end());
    EXPECT_LT(rel_l2(got, ref), op_tolerance(d)) << what << " " << dtype_name(d);
  }

  ExecContext& gpu() { return gpu_->ctx(); }
  ExecContext& cpu() { return cpu_.ctx(); }

  std::unique_ptr<CudaExecContext> gpu_;
  CpuExecContext cpu_;
};

TEST_F(CudaOps, ComputeSupported) {
  for (DType d : kFloatTypes) EXPECT_TRUE(ops::compute_supported(DeviceKind::kCuda, d));
  EXPECT_FALSE(ops::compute_supported(DeviceKind::kCuda, DType::kI32));
}

TEST_F(CudaOps, LinearAndMatmul) {
  for (DType d : kFloatTypes) {
    auto x = make(d, {2, 9, 64}, 1.f, 1), w = make(d, {48, 64}, 0.2f, 2), b = make(d, {48}, 1.f, 3);
    auto y = zeros(d, {2, 9, 48});
    ASSERT_TRUE(ops::linear(cpu(), x.cpu, w.cpu, &b.cpu, y.cpu).ok());
    ASSERT_TRUE(ops::linear(gpu(), x.dev, w.dev, &b.dev, y.dev).ok());
    expect_close(y, d, "linear+bias");
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        const int m = 13, n = 21, k = 40;
        auto a = make(d, ta ? Shape{k, m} : Shape{m, k}, 1.f, 4);
        auto bm = make(d, tb ? Shape{n, k} : Shape{k, n}, 1.f, 5);
        auto c = make(d, {m, n}, 1.f, 6);
        ASSERT_TRUE(ops::matmul(cpu(), a.cpu, ta, bm.cpu, tb, c.cpu, 0.5f, 0.75f).ok());
        ASSERT_TRUE(ops::matmul(gpu(), a.dev, ta, bm.dev, tb, c.dev, 0.5f, 0.75f).ok());
        expect_close(c, d, ta ? (tb ? "matmul TT" : "matmul TN") : (tb ? "matmul NT" : "matmul NN"));
      }
  }
}

TEST_F(CudaOps, Elementwise) {
  for (DType d : kFloatTypes) {
    auto x = make(d, {7, 130}, 2.f, 1), b = make(d, {130}, 1.f, 2), z = make(d, {7, 130}, 1.f, 3);
    ASSERT_TRUE(ops::bias_add(cpu(), x.cpu, b.cpu).ok());
    ASSERT_TRUE(ops::bias_add(gpu(), x.dev, b.dev).ok());
    expect_close(x, d, "bias_add");
    auto sum = zeros(d, {7, 130});
    ASSERT_TRUE(ops::add(cpu(), x.cpu, z.cpu, sum.cpu).ok());
    ASSERT_TRUE(ops::add(gpu(), x.dev, z.dev, sum.dev).ok());
    expect_close(sum, d, "add");
    for (auto mode : {ops::GeluMode::kErf, ops::GeluMode::kTanh}) {
      auto g = zeros(d, {7, 130});
      ASSERT_TRUE(ops::gelu(cpu(), z.cpu, g.cpu, mode).ok());
      ASSERT_TRUE(ops::gelu(gpu(), z.dev, g.dev, mode).ok());
      expect_close(g, d, mode == ops::GeluMode::kErf ? "gelu erf" : "gelu tanh");
      // A multiple of 8 elements takes the 16-byte vector path for 16-bit types.
      auto zv = make(d, {8, 136}, 2.f, 4), gv = zeros(d, {8, 136});
      ASSERT_TRUE(ops::gelu(cpu(), zv.cpu, gv.cpu, mode).ok());
      ASSERT_TRUE(ops::gelu(gpu(), zv.dev, gv.dev, mode).ok());
      expect_close(gv, d, mode == ops::GeluMode::kErf ? "gelu erf (8 x 136)" : "gelu tanh (8 x 136)");
    }
    auto s = zeros(d, {7, 130});
    ASSERT_TRUE(ops::softmax(cpu(), x.cpu, s.cpu).ok());
    ASSERT_TRUE(ops::softmax(gpu(), x.dev, s.dev).ok());
    expect_close(s, d, "softmax");
  }
}

TEST_F(CudaOps, Norms) {
  for (DType d : kFloatTypes) {
    auto x = make(d, {11, 384}, 2.f, 1), r = make(d, {11, 384}, 1.f, 2);
    auto g = make(d, {384}, 1.f, 3), b = make(d, {384}, 1.f, 4);
    auto out = zeros(d, {11, 384});
    ASSERT_TRUE(ops::layer_norm(cpu(), x.cpu, &r.cpu, g.cpu, b.cpu, 1e-12f, out.cpu).ok());
    ASSERT_TRUE(ops::layer_norm(gpu(), x.dev, &r.dev, g.dev, b.dev, 1e-12f, out.dev).ok());
    expect_close(out, d, "layer_norm+residual");
    auto n = zeros(d, {11, 384});
    ASSERT_TRUE(ops::l2_normalize(cpu(), x.cpu, n.cpu).ok());
    ASSERT_TRUE(ops::l2_normalize(gpu(), x.dev, n.dev).ok());
    expect_close(n, d, "l2_normalize");
  }
}

TEST_F(CudaOps, EmbedTokens) {
  std::vector<int32_t> ids = {3, 0, 17, 17, 5, 9, 1}, pos = {0, 1, 2, 3, 0, 1, 2}, typ = {0, 1, 0, 1, 1, 0, 0};
  for (DType d : kFloatTypes) {
    auto word = make(d, {20, 64}, 1.f, 1), position = make(d, {8, 64}, 1.f, 2), type = make(d, {2, 64}, 1.f, 3);
    auto di = ints(ids), dp = ints(pos), dt = ints(typ);
    auto out = zeros(d, {7, 64});
    ops::EmbeddingTables tc{word.cpu, &position.cpu, &type.cpu}, tg{word.dev, &position.dev, &type.dev};
    ASSERT_TRUE(ops::embed_tokens(cpu(), di.cpu, &dp.cpu, &dt.cpu, tc, out.cpu).ok());
    ASSERT_TRUE(ops::embed_tokens(gpu(), di.dev, &dp.dev, &dt.dev, tg, out.dev).ok());
    expect_close(out, d, "embed_tokens");
  }
}

TEST_F(CudaOps, PoolAndAttentionVarlen) {
  const std::vector<int> lens = {5, 1, 70, 0, 12};
  auto batch = ops::VarlenBatch::from_lengths(lens);
  const int T = batch.total(), heads = 2, dim = 32, H = heads * dim;
  for (DType d : kFloatTypes) {
    auto hidden = make(d, {T, H}, 1.f, 1);
    for (auto mode : {ops::PoolingMode::kCls, ops::PoolingMode::kMean, ops::PoolingMode::kMax,
                      ops::PoolingMode::kLastToken}) {
      auto out = zeros(d, {batch.batch(), H});
      ASSERT_TRUE(ops::pool(cpu(), hidden.cpu, batch, mode, out.cpu).ok());
      ASSERT_TRUE(ops::pool(gpu(), hidden.dev, batch, mode, out.dev).ok());
      expect_close(out, d, ops::pooling_mode_name(mode));
    }
    auto qkv = make(d, {T, 3 * H}, 1.f, 2);
    auto out = zeros(d, {T, H});
    const float scale = 1.f / std::sqrt(static_cast<float>(dim));
    ASSERT_TRUE(ops::attention_varlen(cpu(), qkv.cpu, batch, heads, dim, scale, out.cpu).ok());
    ASSERT_TRUE(ops::attention_varlen(gpu(), qkv.dev, batch, heads, dim, scale, out.dev).ok());
    expect_close(out, d, "attention_varlen (per-call description)");
    // The same through a persistent device description (the graph path).
    VarlenLayout layout{8, T};
    std::vector<int32_t> desc(layout.total_ints());
    fill_varlen_meta(layout, batch.cu_seqlens.data(), batch.batch(), desc.data());
    DevMem ddesc = upload_ints(desc);
    auto b2 = batch;
    b2.cuda_desc = ddesc.as<int32_t>();
    b2.cuda_max_seqs = 8;
    auto out2 = zeros(d, {T, H});
    ASSERT_TRUE(ops::attention_varlen(gpu(), qkv.dev, b2, heads, dim, scale, out2.dev).ok());
    out2.host = out.host;
    expect_close(out2, d, "attention_varlen (persistent description)");
  }
}

TEST_F(CudaOps, Convert) {
  auto src = make(DType::kF32, {1000}, 3.f, 1);
  for (DType d : {DType::kF16, DType::kBF16}) {
    auto mid = zeros(d, {1000});
    auto back = zeros(DType::kF32, {1000});
    ASSERT_TRUE(ops::convert(gpu(), src.dev, mid.dev).ok());
    ASSERT_TRUE(ops::convert(gpu(), mid.dev, back.dev).ok());
    gpu_->synchronize();
    auto got = download(back.dev.data, 1000, DType::kF32);
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(got[i], round_to(d, src.host[i])) << dtype_name(d) << " " << i;
  }
}

TEST_F(CudaOps, WrongDeviceIsRejected) {
  auto x = make(DType::kF32, {4, 8});
  auto y = zeros(DType::kF32, {4, 8});
  auto st = ops::gelu(gpu(), x.cpu, y.dev, ops::GeluMode::kErf);
  EXPECT_FALSE(st.ok());
}

}  // namespace
}  // namespace fathom::cuda

#endif  // FATHOM_WITH_CUDA
