// The decoder-LLM ops on CUDA (every dtype, through the src/ops dispatch) against the same ops on the CPU in
// float32 on dtype-rounded inputs: rms_norm, silu_mul, qk_norm_rope, paged_kv_write + attention_paged,
// attention_varlen_causal.
#if FATHOM_WITH_CUDA  // CUDA-only test; CPU builds compile nothing here
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <vector>

#include "backends/cuda/context.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/attention_paged.h"
#include "ops/device_runner.h"
#include "ops/fsmn.h"
#include "ops/cuda_test_util.h"
#include "ops/norm.h"
#include "ops/qk_norm_rope.h"
#include "ops/rows.h"

namespace fathom::cuda {
namespace {
using namespace test;

double tol(DType d) { return d == DType::kF32 ? 1e-5 : d == DType::kF16 ? 3e-3 : 2e-2; }

class CudaDecoderOps : public ::testing::Test {
 protected:
  void SetUp() override {
    if (device_count() == 0) GTEST_SKIP() << "no CUDA device";
    gpu_ = std::make_unique<CudaExecContext>(0);
  }
  ExecContext& gpu() { return gpu_->ctx(); }
  ExecContext& cpu() { return cpu_.ctx(); }
  static TensorView dev(const DevMem& m, DType d, Shape s) { return TensorView(m.get(), d, s, Device::cuda(0)); }
  void check(const char* what, DType d, const DevMem& got, const std::vector<float>& ref) {
    gpu_->synchronize();
    auto g = download(got.get(), ref.size(), d);
    const double e = rel_l2(g, std::vector<double>(ref.begin(), ref.end()));
    std::printf("  %-28s %-8s rel_l2 %.2e\n", what, std::string(dtype_name(d)).c_str(), e);
    EXPECT_LT(e, tol(d)) << what << " " << dtype_name(d);
  }
  std::unique_ptr<CudaExecContext> gpu_;
  CpuExecContext cpu_;
};

TEST_F(CudaDecoderOps, RmsNormAndSiluMulAllDtypes) {
  std::mt19937 rng(1);
  for (DType d : kFloatTypes) {
    const int R = 7, C = 300;
    auto x = random_vec(R * C, d, rng), w = random_vec(C, d, rng);
    std::vector<float> ref(x.size());
    ASSERT_TRUE(ops::rms_norm(cpu(), TensorView(x.data(), DType::kF32, Shape{R, C}), TensorView(w.data(), DType::kF32, Shape{C}),
                              1e-6f, TensorView(ref.data(), DType::kF32, Shape{R, C})).ok());
    DevMem xd = upload(x, d), wd = upload(w, d), od(x.size() * dtype_size(d));
    od.poison();
    ASSERT_TRUE(ops::rms_norm(gpu(), dev(xd, d, Shape{R, C}), dev(wd, d, Shape{C}), 1e-6f, dev(od, d, Shape{R, C})).ok());
    check("rms_norm", d, od, ref);
    auto gu = random_vec(R * 2 * C, d, rng);
    std::vector<float> sref(static_cast<std::size_t>(R * C));
    ASSERT_TRUE(ops::silu_mul(cpu(), TensorView(gu.data(), DType::kF32, Shape{R, 2 * C}),
                              TensorView(sref.data(), DType::kF32, Shape{R, C})).ok());
    DevMem gud = upload(gu, d), sd(sref.size() * dtype_size(d));
    sd.poison();
    ASSERT_TRUE(ops::silu_mul(gpu(), dev(gud, d, Shape{R, 2 * C}), dev(sd, d, Shape{R, C})).ok());
    check("silu_mul", d, sd, sref);
  }
}

TEST_F(CudaDecoderOps, QkNormRopeAllDtypes) {
  std::mt19937 rng(2);
  for (DType d : kFloatTypes) {
    for (bool norm : {false, true}) {
      const ops::QkvLayout L{8, 2, 64};
      const int T = 9;
      auto qkv = random_vec(static_cast<std::size_t>(T * L.row_width()), d, rng);
      auto qn = random_vec(64, d, rng), kn = random_vec(64, d, rng);
      std::vector<int32_t> pos = {0, 1, 2, 3, 50, 51, 400, 401, 4000};
      std::vector<float> inv(32);
      for (int i = 0; i < 32; ++i) inv[i] = static_cast<float>(1.0 / std::pow(1e6, 2.0 * i / 64));
      auto ref = qkv;
      TensorView qc(qn.data(), DType::kF32, Shape{64}), kc(kn.data(), DType::kF32, Shape{64});
      ASSERT_TRUE(ops::qk_norm_rope(cpu(), TensorView(ref.data(), DType::kF32, Shape{T, L.row_width()}), L,
                                    TensorView(pos.data(), DType::kI32, Shape{T}), TensorView(inv.data(), DType::kF32, Shape{32}),
                                    1.0f, norm ? &qc : nullptr, norm ? &kc : nullptr, 1e-6f).ok());
      DevMem xd = upload(qkv, d), qd = upload(qn, d), kd = upload(kn, d), pd = upload_ints(pos), fd = upload(inv, DType::kF32);
      TensorView qg = dev(qd, d, Shape{64}), kg = dev(kd, d, Shape{64});
      ASSERT_TRUE(ops::qk_norm_rope(gpu(), dev(xd, d, Shape{T, L.row_width()}), L, dev(pd, DType::kI32, Shape{T}),
                                    dev(fd, DType::kF32, Shape{32}), 1.0f, norm ? &qg : nullptr, norm ? &kg : nullptr, 1e-6f).ok());
      check(norm ? "qk_norm_rope (q/k norm)" : "qk_norm_rope", d, xd, ref);
    }
  }
}

TEST_F(CudaDecoderOps, PagedAttentionAllDtypes) {
  std::mt19937 rng(3);
  for (DType d : kFloatTypes) {
    const ops::QkvLayout L{8, 2, 128};
    const int block = 16, pool_blocks = 12;
    // Sequence 0: prefill of 37; sequence 1: decode step after 40 cached; sequence 2: 5 new after 20 cached.
    std::vector<int32_t> tables = {3, 7, 1, 0, 5, 9, 11, 2, 4, 6};
    std::vector<ops::PagedSeq> seqs = {{0, 37, 37, 0}, {37, 1, 41, 3}, {38, 5, 25, 6}};
    const int T = 43;
    const int64_t rows = pool_blocks * block;
    auto qkv = random_vec(static_cast<std::size_t>(T * L.row_width()), d, rng);
    auto kpool = random_vec(static_cast<std::size_t>(rows * L.kv_width()), d, rng);
    auto vpool = random_vec(kpool.size(), d, rng);
    std::vector<int32_t> slots(T);
    for (const auto& s : seqs)
      for (int i = 0; i < s.q_len; ++i) {
        const int p = s.kv_len - s.q_len + i;
        slots[s.q_start + i] = tables[s.table_offset + p / block] * block + p % block;
      }
    const ops::PagedAttentionBounds bounds{3, 37, T, block};
    std::vector<float> ref(static_cast<std::size_t>(T * L.q_width()));
    auto kc = kpool, vc = vpool;
    TensorView qkv_c(qkv.data(), DType::kF32, Shape{T, L.row_width()});
    TensorView kcv(kc.data(), DType::kF32, Shape{rows, L.kv_width()}), vcv(vc.data(), DType::kF32, Shape{rows, L.kv_width()});
    ASSERT_TRUE(ops::paged_kv_write(cpu(), qkv_c, L, TensorView(slots.data(), DType::kI32, Shape{T}), kcv, vcv).ok());
    ASSERT_TRUE(ops::attention_paged(cpu(), qkv_c, L, seqs.data(), tables.data(), static_cast<int>(tables.size()), bounds, kcv,
                                     vcv, 0.088f, TensorView(ref.data(), DType::kF32, Shape{T, L.q_width()})).ok());
    DevMem xd = upload(qkv, d), kd = upload(kpool, d), vd = upload(vpool, d), sd = upload_ints(slots), td = upload_ints(tables);
    DevMem descd(seqs.size() * sizeof(ops::PagedSeq)), od(ref.size() * dtype_size(d));
    FATHOM_CUDA_CHECK(cudaMemcpy(descd.get(), seqs.data(), descd.bytes(), cudaMemcpyHostToDevice));
    od.poison();
    TensorView kg = dev(kd, d, Shape{rows, L.kv_width()}), vg = dev(vd, d, Shape{rows, L.kv_width()});
    ASSERT_TRUE(ops::paged_kv_write(gpu(), dev(xd, d, Shape{T, L.row_width()}), L, dev(sd, DType::kI32, Shape{T}), kg, vg).ok());
    check("paged_kv_write (keys)", d, kd, kc);
    ASSERT_TRUE(ops::attention_paged(gpu(), dev(xd, d, Shape{T, L.row_width()}), L, descd.as<ops::PagedSeq>(),
                                     td.as<int32_t>(), static_cast<int>(tables.size()), bounds, kg, vg, 0.088f,
                                     dev(od, d, Shape{T, L.q_width()})).ok());
    check("attention_paged", d, od, ref);
  }
}

// The causal grouped-query varlen attention of a prefill: tensor-core shapes (head_dim 64 / 128, f16 / bf16) and
// CUDA-core ones (f32, head_dim 40), sequences crossing 64-row tiles, built per call and from an uploaded batch
// description (as the decoder passes it).
TEST_F(CudaDecoderOps, CausalVarlenAttentionAllDtypes) {
  std::mt19937 rng(5);
  const std::vector<int> lengths = {70, 1, 129, 64, 5};
  const ops::VarlenBatch host_batch = ops::VarlenBatch::from_lengths(lengths);
  const int T = host_batch.total(), B = host_batch.batch();
  for (const ops::QkvLayout L : {ops::QkvLayout{8, 2, 128}, ops::QkvLayout{16, 8, 64}, ops::QkvLayout{6, 2, 40},
                                 ops::QkvLayout{4, 4, 32}}) {
    for (DType d : kFloatTypes) {
      auto qkv = random_vec(static_cast<std::size_t>(T * L.row_width()), d, rng);
      std::vector<float> ref(static_cast<std::size_t>(T * L.q_width()));
      ASSERT_TRUE(ops::attention_varlen_causal(cpu(), TensorView(qkv.data(), DType::kF32, Shape{T, L.row_width()}), L,
                                               host_batch, 0.11f, TensorView(ref.data(), DType::kF32, Shape{T, L.q_width()}))
                      .ok());
      DevMem xd = upload(qkv, d), od(ref.size() * dtype_size(d));
      const std::string name = "causal varlen " + std::to_string(L.q_heads) + "/" + std::to_string(L.kv_heads) + "x" +
                               std::to_string(L.head_dim);
      od.poison();
      ASSERT_TRUE(ops::attention_varlen_causal(gpu(), dev(xd, d, Shape{T, L.row_width()}), L, host_batch, 0.11f,
                                               dev(od, d, Shape{T, L.q_width()})).ok());
      check(name.c_str(), d, od, ref);
      std::vector<int32_t> desc(ops::graph_batch_meta_ints(B, T));
      ASSERT_TRUE(ops::fill_graph_batch_meta(B, T, host_batch.cu_seqlens.data(), B, desc.data()).ok());
      DevMem dd = upload_ints(desc);
      ops::VarlenBatch uploaded = host_batch;
      uploaded.cuda_desc = dd.as<int32_t>();
      uploaded.cuda_max_seqs = B;
      od.poison();
      ASSERT_TRUE(ops::attention_varlen_causal(gpu(), dev(xd, d, Shape{T, L.row_width()}), L, uploaded, 0.11f,
                                               dev(od, d, Shape{T, L.q_width()})).ok());
      check((name + " (desc)").c_str(), d, od, ref);
    }
  }
}

TEST_F(CudaDecoderOps, FsmnMemoryAndReluAllDtypes) {
  std::mt19937 rng(4);
  for (DType d : kFloatTypes) {
    const int D = 40, K = 7, left = 4;
    auto batch = ops::VarlenBatch::from_lengths({11, 1, 23});
    const int T = batch.total();
    auto qkv = random_vec(static_cast<std::size_t>(T * 3 * D), d, rng), w = random_vec(D * K, d, rng);
    std::vector<float> ref(static_cast<std::size_t>(T * D));
    ASSERT_TRUE(ops::fsmn_memory(cpu(), TensorView(qkv.data(), DType::kF32, Shape{T, 3 * D}), 2 * D,
                                 TensorView(w.data(), DType::kF32, Shape{D, 1, K}), left, batch,
                                 TensorView(ref.data(), DType::kF32, Shape{T, D})).ok());
    DevMem xd = upload(qkv, d), wd = upload(w, d), cu = upload_ints(batch.cu_seqlens), od(ref.size() * dtype_size(d));
    od.poison();
    batch.cu_seqlens_device = dev(cu, DType::kI32, Shape{4});
    ASSERT_TRUE(ops::fsmn_memory(gpu(), dev(xd, d, Shape{T, 3 * D}), 2 * D, dev(wd, d, Shape{D, 1, K}), left, batch,
                                 dev(od, d, Shape{T, D})).ok());
    check("fsmn_memory", d, od, ref);
    for (auto& v : ref) v = v > 0 ? v : 0;
    ASSERT_TRUE(ops::relu(gpu(), dev(od, d, Shape{T, D}), dev(od, d, Shape{T, D})).ok());
    check("relu", d, od, ref);
  }
}

TEST_F(CudaDecoderOps, ArgmaxRowsEqualsTheCpu) {
  // Vocabulary-sized rows (more columns than threads), a tie between two strided lanes, a row of equal values.
  std::mt19937 rng(5);
  const int R = 6, C = 151936;
  std::vector<float> x = random_vec(static_cast<std::size_t>(R) * C, DType::kF32, rng);
  x[0 * static_cast<std::size_t>(C) + 1000] = 9.0f, x[0 * static_cast<std::size_t>(C) + 77777] = 9.0f;
  x[1 * static_cast<std::size_t>(C) + C - 1] = 9.0f;
  std::fill(x.begin() + 2 * static_cast<std::size_t>(C), x.begin() + 3 * static_cast<std::size_t>(C), 0.25f);
  std::vector<int32_t> ref(R);
  ASSERT_TRUE(ops::argmax_rows(cpu(), TensorView(x.data(), DType::kF32, Shape{R, C}),
                               TensorView(ref.data(), DType::kI32, Shape{R})).ok());
  EXPECT_EQ(ref[0], 1000);
  EXPECT_EQ(ref[2], 0);
  DevMem xd = upload(x, DType::kF32), od = upload_ints(std::vector<int32_t>(R, -7));
  ASSERT_TRUE(ops::argmax_rows(gpu(), dev(xd, DType::kF32, Shape{R, C}), dev(od, DType::kI32, Shape{R})).ok());
  gpu_->synchronize();
  std::vector<int32_t> got(R);
  FATHOM_CUDA_CHECK(cudaMemcpy(got.data(), od.get(), R * 4, cudaMemcpyDeviceToHost));
  EXPECT_EQ(got, ref);
}

}  // namespace
}  // namespace fathom::cuda
#endif  // FATHOM_WITH_CUDA
