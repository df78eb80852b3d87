// The encoder ops on CUDA (through the src/ops dispatch) against the same ops on the CPU, every dtype:
// rotary_qk, gated_activation, attention_varlen with a distance bias and a sliding window (per-call and
// persistent batch descriptions, sequences longer than one 64-row tile).
#if FATHOM_WITH_CUDA  // CUDA-only test; CPU builds compile nothing here
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "backends/cuda/context.h"
#include "backends/cuda/varlen.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/cuda_test_util.h"
#include "ops/rotary.h"
#include "runtime/allocator.h"
#include "runtime/exec_context.h"

namespace fathom::cuda {
namespace {
using namespace test;

double op_tolerance(DType d) { return d == DType::kF32 ? 1e-5 : d == DType::kF16 ? 3e-3 : 2e-2; }

class CudaEncoderOps : public ::testing::Test {
 protected:
  void SetUp() override {
    if (device_count() == 0) GTEST_SKIP() << "no CUDA device";
    gpu_ = std::make_unique<CudaExecContext>(0);
  }
  struct Pair {
    std::vector<float> host;
    TensorView cpu;
    std::shared_ptr<DevMem> mem;
    TensorView dev;
  };
  Pair make(DType d, Shape shape, uint32_t seed, float scale = 1.f) {
    std::mt19937 rng(seed);
    Pair p;
    p.host = random_vec(static_cast<std::size_t>(shape.numel()), d, rng, scale);
    p.cpu = TensorView(p.host.data(), DType::kF32, shape);
    p.mem = std::make_shared<DevMem>(upload(p.host, d));
    p.dev = TensorView(p.mem->get(), d, shape, Device::cuda(0));
    return p;
  }
  Pair f32(std::vector<float> v, Shape shape) {
    Pair p;
    p.host = std::move(v);
    p.cpu = TensorView(p.host.data(), DType::kF32, shape);
    p.mem = std::make_shared<DevMem>(upload(p.host, DType::kF32));
    p.dev = TensorView(p.mem->get(), DType::kF32, shape, Device::cuda(0));
    return p;
  }
  void expect_close(const Pair& p, DType d, const std::string& what) {
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

TEST_F(CudaEncoderOps, RotaryAndGatedActivation) {
  const int tokens = 37, heads = 3, d = 24, hidden = heads * d;
  std::vector<int32_t> pos(tokens);
  for (int t = 0; t < tokens; ++t) pos[t] = (t * 7) % 50;
  DevMem pos_d = upload_ints(pos);
  TensorView pos_cpu(pos.data(), DType::kI32, Shape{tokens});
  TensorView pos_dev(pos_d.get(), DType::kI32, Shape{tokens}, Device::cuda(0));
  std::vector<float> inv(d / 2 - 2);
  for (std::size_t i = 0; i < inv.size(); ++i) inv[i] = 1.0f / std::pow(10000.0f, 2.0f * i / (d - 4));
  auto inv_p = f32(inv, Shape{static_cast<int64_t>(inv.size())});
  for (DType dt : kFloatTypes) {
    auto qkv = make(dt, {tokens, 3 * hidden}, 1);
    ASSERT_TRUE(ops::rotary_qk(cpu(), qkv.cpu, pos_cpu, heads, d, d - 4, inv_p.cpu).ok());
    ASSERT_TRUE(ops::rotary_qk(gpu(), qkv.dev, pos_dev, heads, d, d - 4, inv_p.dev).ok());
    expect_close(qkv, dt, "rotary_qk");
    for (int a = 0; a < 3; ++a)
      for (bool first : {true, false}) {
        auto x = make(dt, {tokens, 2 * 40}, 2, 2.f);
        auto y = make(dt, {tokens, 40}, 3);
        ASSERT_TRUE(ops::gated_activation(cpu(), x.cpu, y.cpu, static_cast<ops::GatedActivation>(a), first).ok());
        ASSERT_TRUE(ops::gated_activation(gpu(), x.dev, y.dev, static_cast<ops::GatedActivation>(a), first).ok());
        expect_close(y, dt, "gated_activation " + std::to_string(a) + (first ? " first" : " second"));
      }
  }
}

TEST_F(CudaEncoderOps, AttentionWithDistanceBiasAndWindow) {
  const int heads = 2, span = 160;
  const std::vector<int> lengths{1, 70, 150, 9};
  auto batch = ops::VarlenBatch::from_lengths(lengths);
  const int total = batch.total();
  std::mt19937 rng(9);
  auto bias = f32(random_vec(static_cast<std::size_t>(heads) * (2 * span - 1), DType::kF32, rng), Shape{heads, 2 * span - 1});
  // Windows of 8 and 64 (ModernBERT's local layers) and 100 (more than a 64-row tile); f16 / bf16 at head_dim
  // 32 / 64 / 128 run a window on the tensor-core kernel, the rest on the CUDA-core one.
  for (int d : {24, 32, 64, 128})
    for (DType dt : kFloatTypes)
      for (int mode = 0; mode < 5; ++mode) {  // bias, window 8, bias + window 8, window 64, window 100
        const int hidden = heads * d;
        auto qkv = make(dt, {total, 3 * hidden}, 4);
        auto out = make(dt, {total, hidden}, 5);
        ops::AttentionExtras extras;
        const bool with_bias = mode == 0 || mode == 2;
        if (with_bias) {
          extras.distance_bias = &bias.cpu;
          extras.span = span;
        }
        if (mode != 0) extras.window_half = mode == 3 ? 64 : mode == 4 ? 100 : 8;
        const float scale = 1.f / std::sqrt(static_cast<float>(d));
        ASSERT_TRUE(ops::attention_varlen(cpu(), qkv.cpu, batch, heads, d, scale, out.cpu, extras).ok());
        if (with_bias) extras.distance_bias = &bias.dev;
        ASSERT_TRUE(ops::attention_varlen(gpu(), qkv.dev, batch, heads, d, scale, out.dev, extras).ok());
        const std::string what = "attention extras mode " + std::to_string(mode) + " d " + std::to_string(d);
        expect_close(out, dt, what);
        // The same through a persistent device description (the graph path).
        VarlenLayout layout{8, total};
        std::vector<int32_t> desc(layout.total_ints());
        fill_varlen_meta(layout, batch.cu_seqlens.data(), batch.batch(), desc.data());
        DevMem ddesc = upload_ints(desc);
        auto b2 = batch;
        b2.cuda_desc = ddesc.as<int32_t>();
        b2.cuda_max_seqs = 8;
        ASSERT_TRUE(ops::attention_varlen(gpu(), qkv.dev, b2, heads, d, scale, out.dev, extras).ok());
        expect_close(out, dt, what + " (persistent description)");
      }
}

}  // namespace
}  // namespace fathom::cuda
#endif  // FATHOM_WITH_CUDA
