// conv1d and attention_cached on CUDA (every dtype, through the src/ops dispatch) against the same ops on
// the CPU in float32, on dtype-rounded random inputs.
#if FATHOM_WITH_CUDA  // CUDA-only test; CPU builds compile nothing here
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "backends/cuda/context.h"
#include "ops/attention_cached.h"
#include "ops/conv1d.h"
#include "ops/cuda_test_util.h"
#include "runtime/exec_context.h"

namespace fathom::cuda {
namespace {
using namespace test;

double op_tolerance(DType d) { return d == DType::kF32 ? 1e-5 : d == DType::kF16 ? 3e-3 : 2e-2; }

// A host f32 buffer and its device twin in `dtype` holding the same (dtype-rounded) values; views of
// either may be taken at any element offset.
struct Twin {
  DType dtype = DType::kF32;
  std::vector<float> host;
  Buffer dev;
  TensorView cpu_view(int64_t offset, Shape s) { return TensorView(host.data() + offset, DType::kF32, s); }
  TensorView dev_view(int64_t offset, Shape s) const {
    return TensorView(static_cast<char*>(dev.data()) + offset * static_cast<int64_t>(dtype_size(dtype)), dtype, s,
                      Device::cuda(0));
  }
};

Twin twin(DType d, std::size_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  Twin t;
  t.dtype = d;
  t.host = random_vec(std::max<std::size_t>(n, 1), d, rng, scale);  // never an empty (null) host view
  t.dev = std::move(Buffer::allocate(device_allocator(0), std::max<std::size_t>(n, 1) * dtype_size(d)).value());
  DevMem staged = upload(t.host, d);
  FATHOM_CUDA_CHECK(cudaMemcpy(t.dev.data(), staged.get(), n * dtype_size(d), cudaMemcpyDeviceToDevice));
  return t;
}

// Poisoned device output of n elements and its host f32 twin.
Twin output(DType d, std::size_t n) {
  Twin t = twin(d, n, 0);
  FATHOM_CUDA_CHECK(cudaMemset(t.dev.data(), 0xFF, std::max<std::size_t>(n, 1) * dtype_size(d)));
  return t;
}

struct Errors {
  double rel_l2 = 0, max_abs = 0;
};

Errors compare(const Twin& out, std::size_t n) {
  FATHOM_CUDA_CHECK(cudaDeviceSynchronize());
  auto got = download(out.dev.data(), n, out.dtype);
  std::vector<double> ref(out.host.begin(), out.host.begin() + static_cast<std::ptrdiff_t>(n));
  Errors e;
  e.rel_l2 = rel_l2(got, ref);
  for (std::size_t i = 0; i < n; ++i) e.max_abs = std::max(e.max_abs, std::abs(got[i] - ref[i]));
  if (!std::isfinite(e.rel_l2)) e.max_abs = INFINITY;
  return e;
}

void report(const std::string& what, DType d, const Errors& e) {
  std::printf("  %-58s %-8s rel_l2 %.2e  max_abs %.2e\n", what.c_str(), std::string(dtype_name(d)).c_str(), e.rel_l2,
              e.max_abs);
  EXPECT_LT(e.rel_l2, op_tolerance(d)) << what << " " << dtype_name(d);
}

class CudaSequenceOps : public ::testing::Test {
 protected:
  void SetUp() override {
    if (device_count() == 0) GTEST_SKIP() << "no CUDA device";
    gpu_ = std::make_unique<CudaExecContext>(0);
  }
  ExecContext& gpu() { return gpu_->ctx(); }
  ExecContext& cpu() { return cpu_.ctx(); }

  // One conv1d case: B inputs (rank 2 when B == 0, meaning one unbatched input).
  void conv_case(DType d, int B, int c_in, int t_in, int c_out, int k, int stride, int pad, ops::Conv1dInput layout,
                 bool with_bias, uint32_t seed) {
    const int64_t t_out = ops::conv1d_output_length(t_in, k, stride, pad);
    const int64_t nb = std::max(B, 1);
    const bool cm = layout == ops::Conv1dInput::kChannelMajor;
    Shape xs = B == 0 ? (cm ? Shape{c_in, t_in} : Shape{t_in, c_in})
                      : (cm ? Shape{B, c_in, t_in} : Shape{B, t_in, c_in});
    Shape ys = B == 0 ? Shape{t_out, c_out} : Shape{B, t_out, c_out};
    Twin x = twin(d, static_cast<std::size_t>(nb * c_in * t_in), seed, 1.f);
    Twin w = twin(d, static_cast<std::size_t>(c_out) * c_in * k, seed + 1, 1.f / std::sqrt(float(c_in * k)));
    Twin b = twin(d, static_cast<std::size_t>(c_out), seed + 2, 0.5f);
    const std::size_t ny = static_cast<std::size_t>(nb * t_out * c_out);
    Twin y = output(d, ny);
    Shape wsh{c_out, c_in, k}, bsh{c_out};
    TensorView bc = b.cpu_view(0, bsh), bg = b.dev_view(0, bsh);
    ASSERT_TRUE(ops::conv1d(cpu(), x.cpu_view(0, xs), layout, w.cpu_view(0, wsh), with_bias ? &bc : nullptr, stride, pad,
                            y.cpu_view(0, ys)).ok());
    Status st = ops::conv1d(gpu(), x.dev_view(0, xs), layout, w.dev_view(0, wsh), with_bias ? &bg : nullptr, stride,
                            pad, y.dev_view(0, ys));
    ASSERT_TRUE(st.ok()) << st.error().message;
    char what[160];
    std::snprintf(what, sizeof(what), "conv1d %s B%d Cin%d T%d Cout%d k%d s%d p%d%s", cm ? "chan-major" : "time-major", B,
                  c_in, t_in, c_out, k, stride, pad, with_bias ? " +bias" : "");
    report(what, d, compare(y, ny));
  }

  std::unique_ptr<CudaExecContext> gpu_;
  CpuExecContext cpu_;
};

TEST_F(CudaSequenceOps, Conv1dAllDtypesBothLayouts) {
  for (DType d : kFloatTypes) {
    // Whisper's front end (tiny widths): mel channel-major k3 s1 p1, then time-major k3 s2 p1.
    conv_case(d, 2, 80, 300, 64, 3, 1, 1, ops::Conv1dInput::kChannelMajor, true, 1);
    conv_case(d, 2, 64, 300, 96, 3, 2, 1, ops::Conv1dInput::kTimeMajor, true, 2);
    // Real front-end shapes of large-v3 (one window): 128 mels x 3000 frames -> 384, 3000 x 384 -> 1500 x 384.
    conv_case(d, 1, 128, 3000, 384, 3, 1, 1, ops::Conv1dInput::kChannelMajor, true, 3);
    conv_case(d, 1, 384, 3000, 384, 3, 2, 1, ops::Conv1dInput::kTimeMajor, true, 4);
    // Ragged tiles, unbatched rank 2, no bias, other kernel sizes and paddings.
    conv_case(d, 0, 37, 45, 19, 5, 2, 2, ops::Conv1dInput::kTimeMajor, false, 5);
    conv_case(d, 0, 37, 45, 19, 1, 1, 0, ops::Conv1dInput::kChannelMajor, false, 6);
    conv_case(d, 3, 5, 7, 4, 3, 3, 0, ops::Conv1dInput::kChannelMajor, true, 7);
    // A window too wide for the shared-memory tile (direct path for f32).
    conv_case(d, 2, 33, 700, 16, 3, 16, 1, ops::Conv1dInput::kTimeMajor, true, 8);
    conv_case(d, 2, 33, 700, 16, 3, 16, 1, ops::Conv1dInput::kChannelMajor, true, 9);
  }
  // Columns over the per-chunk scratch bound: f32 items of ~24 MiB go through the GEMM two at a time.
  conv_case(DType::kF32, 3, 1024, 2000, 64, 3, 1, 1, ops::Conv1dInput::kTimeMajor, true, 10);
}

TEST_F(CudaSequenceOps, Conv1dRejectsUnsupportedDtype) {
  Buffer xb = std::move(Buffer::allocate(device_allocator(0), 64 * 4).value());
  TensorView x(xb.data(), DType::kI32, Shape{4, 4}, Device::cuda(0));
  TensorView w(xb.data(), DType::kI32, Shape{2, 4, 1}, Device::cuda(0));
  TensorView y(xb.data(), DType::kI32, Shape{4, 2}, Device::cuda(0));
  Status st = ops::conv1d(gpu(), x, ops::Conv1dInput::kTimeMajor, w, nullptr, 1, 0, y);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kUnsupported);
}

// One attention_cached case. Sequence b has q_lens[b] queries and kv_lens[b] keys. Keys and values of a
// sequence live in one buffer of rows of `ld` elements: keys at column 0, values at column `v_col`
// (ld >= v_col + hidden), so the views are strided; `v_col` not a multiple of 16 bytes exercises the
// element-wise load path.
struct AttnCase {
  std::vector<int> q_lens, kv_lens;
  int heads = 6, head_dim = 64;
  bool causal = false;
  int ld = 0, v_col = 0;  // 0: ld = 2 * hidden, v_col = hidden
  std::string name;
};

void run_attention(ExecContext& cpu, ExecContext& gpu, DType d, const AttnCase& c, uint32_t seed) {
  const int hidden = c.heads * c.head_dim;
  const int v_col = c.v_col ? c.v_col : hidden;
  const int ld = c.ld ? c.ld : 2 * hidden;
  ASSERT_GE(ld, v_col + hidden);
  auto batch = ops::VarlenBatch::from_lengths(c.q_lens);
  const int T = batch.total();
  Twin q = twin(d, static_cast<std::size_t>(T) * hidden, seed, 1.f);
  std::vector<Twin> kv;
  std::vector<TensorView> kc, vc, kg, vg;
  for (std::size_t b = 0; b < c.kv_lens.size(); ++b) {
    const int64_t L = c.kv_lens[b];
    // Rows of ld elements; the value view starts v_col in and claims full rows, so keep a spare row.
    kv.push_back(twin(d, static_cast<std::size_t>((L + 1) * ld), seed + 10 + static_cast<uint32_t>(b), 1.f));
  }
  for (std::size_t b = 0; b < c.kv_lens.size(); ++b) {
    const int64_t L = c.kv_lens[b];
    kc.push_back(kv[b].cpu_view(0, Shape{L, ld}));
    vc.push_back(kv[b].cpu_view(v_col, Shape{L, ld}));
    kg.push_back(kv[b].dev_view(0, Shape{L, ld}));
    vg.push_back(kv[b].dev_view(v_col, Shape{L, ld}));
  }
  const std::size_t n = static_cast<std::size_t>(T) * hidden;
  Twin out = output(d, n);
  const float scale = 1.f / std::sqrt(static_cast<float>(c.head_dim));
  Status st = ops::attention_cached(cpu, q.cpu_view(0, Shape{T, hidden}), batch, kc, vc, c.heads, c.head_dim, scale,
                                    c.causal, out.cpu_view(0, Shape{T, hidden}));
  ASSERT_TRUE(st.ok()) << st.error().message;
  st = ops::attention_cached(gpu, q.dev_view(0, Shape{T, hidden}), batch, kg, vg, c.heads, c.head_dim, scale, c.causal,
                             out.dev_view(0, Shape{T, hidden}));
  ASSERT_TRUE(st.ok()) << st.error().message;
  if (n == 0) {
    FATHOM_CUDA_CHECK(cudaDeviceSynchronize());
    return;
  }
  report("attention_cached " + c.name, d, compare(out, n));
}

TEST_F(CudaSequenceOps, AttentionCachedAllDtypes) {
  std::vector<AttnCase> cases;
  // Cross-attention decode: one query per sequence over encoder K/V of mixed lengths (one with no keys:
  // zeros, like the CPU op), K and V interleaved in one [frames, 2d] buffer.
  cases.push_back({{1, 1, 1, 1, 1}, {1500, 7, 300, 0, 1}, 6, 64, false, 0, 0, "cross decode, mixed lengths"});
  // Causal decode over self caches viewed as [len, d] rows of a wider [max_pos, 3d] block.
  cases.push_back({{1, 1, 1, 1}, {1, 17, 448, 64}, 6, 64, true, 3 * 384, 384, "self decode causal, strided cache"});
  // Causal prefill: n queries are the last n positions of the keys; some sequences without queries.
  cases.push_back({{4, 0, 1, 9, 3}, {4, 5, 20, 109, 3}, 6, 64, true, 0, 0, "causal prefill, mixed n"});
  cases.push_back({{5, 2}, {30, 2}, 8, 64, false, 0, 0, "non-causal multi-query"});
  // Few sequences x heads with long keys: the key range is split and merged.
  cases.push_back({{1, 1}, {1500, 1499}, 20, 64, false, 0, 0, "cross decode, split keys"});
  cases.push_back({{1}, {448}, 6, 64, true, 0, 0, "self decode causal, split keys"});
  cases.push_back({{3}, {600}, 4, 64, true, 0, 0, "causal prefill, split keys"});
  // Unaligned value view (element-wise loads) and other head sizes.
  cases.push_back({{1, 2, 1}, {50, 60, 300}, 6, 64, false, 2 * 384 + 2, 384 + 1, "unaligned values"});
  cases.push_back({{1, 3}, {200, 40}, 4, 128, true, 0, 0, "head_dim 128"});
  cases.push_back({{2, 1}, {77, 1000}, 5, 80, false, 0, 0, "head_dim 80 (padded)"});
  cases.push_back({{1, 1}, {33, 99}, 3, 32, false, 0, 0, "head_dim 32 (padded)"});
  // Whisper head dims that are not powers of two, in the decoder's layouts (cross K|V rows of [1500, 2d],
  // causal self caches; the 16-bit vector path where head_dim % 8 == 0, element loads otherwise).
  for (int hd : {4, 12, 16, 20, 24, 40}) {
    const std::string n = " head_dim " + std::to_string(hd);
    cases.push_back({{1, 1}, {1500, 1500}, 4, hd, false, 0, 0, "cross decode" + n});
    cases.push_back({{1, 3}, {1, 4}, 4, hd, true, 0, 0, "self decode / prompt causal" + n});
    cases.push_back({{1}, {448}, 2, hd, true, 0, 0, "self decode causal, split keys" + n});
  }
  // Encoder-style: many queries over the same number of keys (non-causal).
  cases.push_back({{150}, {150}, 6, 64, false, 0, 0, "150 queries x 150 keys"});
  // Empty batch and a batch without queries.
  cases.push_back({{}, {}, 6, 64, false, 0, 0, "empty batch"});
  cases.push_back({{0, 0}, {5, 0}, 6, 64, false, 0, 0, "no queries"});
  for (DType d : kFloatTypes)
    for (std::size_t i = 0; i < cases.size(); ++i) {
      SCOPED_TRACE(cases[i].name);
      run_attention(cpu(), gpu(), d, cases[i], static_cast<uint32_t>(100 * i + 7));
    }
}

// attention_cached_prepared (descriptor in device memory, fixed bounds as a captured graph uses them: the
// longest possible key range, padding rows without keys) against attention_cached on the CPU.
TEST_F(CudaSequenceOps, AttentionCachedPreparedMatchesEager) {
  const int heads = 20, hd = 64, hidden = heads * hd, ld = 2 * hidden;
  const std::vector<int> kv_lens = {1, 17, 300, 448};
  const int real = static_cast<int>(kv_lens.size()), rows = real + 2;  // two padding rows
  for (DType d : kFloatTypes)
    for (bool causal : {true, false})
      for (int n_real : {1, real}) {  // one sequence (split keys) and several
        SCOPED_TRACE(std::string(dtype_name(d)) + (causal ? " causal" : " full") + " seqs " + std::to_string(n_real));
        Twin q = twin(d, static_cast<std::size_t>(rows) * hidden, 11, 1.f);
        std::vector<Twin> kv;
        std::vector<TensorView> kc, vc;
        for (int b = 0; b < n_real; ++b) {
          kv.push_back(twin(d, static_cast<std::size_t>(kv_lens[b] + 1) * ld, 20 + b, 1.f));
          kc.push_back(kv.back().cpu_view(0, Shape{kv_lens[b], ld}));
          vc.push_back(kv.back().cpu_view(hidden, Shape{kv_lens[b], ld}));
        }
        const int total = n_real + 2;
        const std::size_t n = static_cast<std::size_t>(total) * hidden;
        Twin out = output(d, n);
        const float scale = 1.f / std::sqrt(static_cast<float>(hd));
        auto batch = ops::VarlenBatch::from_lengths(std::vector<int>(static_cast<std::size_t>(n_real), 1));
        Status st = ops::attention_cached(cpu(), q.cpu_view(0, Shape{n_real, hidden}), batch, kc, vc, heads, hd, scale,
                                          causal, out.cpu_view(0, Shape{n_real, hidden}));
        ASSERT_TRUE(st.ok()) << st.error().message;
        std::fill(out.host.begin() + static_cast<std::ptrdiff_t>(n_real) * hidden, out.host.begin() + n, 0.f);
        std::vector<ops::CachedSeq> seqs;
        for (int b = 0; b < n_real; ++b)
          seqs.push_back({kv[b].dev_view(0, Shape{1}).data, kv[b].dev_view(hidden, Shape{1}).data, kv_lens[b], b, 1, 0});
        for (int b = n_real; b < total; ++b) seqs.push_back({kv[0].dev.data(), kv[0].dev.data(), 0, b, 1, 0});
        Buffer desc = std::move(Buffer::allocate(device_allocator(0), seqs.size() * sizeof(ops::CachedSeq)).value());
        FATHOM_CUDA_CHECK(cudaMemcpy(desc.data(), seqs.data(), seqs.size() * sizeof(ops::CachedSeq), cudaMemcpyHostToDevice));
        const ops::CachedAttentionBounds bounds{total, total, 1, 448, ld, true};
        const std::size_t scratch_bytes = ops::attention_cached_scratch_bytes(gpu(), bounds, heads, hd);
        Buffer scratch;
        if (scratch_bytes) scratch = std::move(Buffer::allocate(device_allocator(0), scratch_bytes).value());
        st = ops::attention_cached_prepared(gpu(), q.dev_view(0, Shape{total, hidden}),
                                            static_cast<const ops::CachedSeq*>(desc.data()), bounds, heads, hd, scale,
                                            causal, scratch.data(), out.dev_view(0, Shape{total, hidden}));
        ASSERT_TRUE(st.ok()) << st.error().message;
        report(std::string("attention_cached_prepared") + (scratch_bytes ? " (split keys)" : ""), d, compare(out, n));
      }
}

TEST_F(CudaSequenceOps, AttentionCachedRejectsWideHeads) {
  const int heads = 1, hd = 256;
  Twin q = twin(DType::kF16, hd, 1), kv = twin(DType::kF16, 4 * hd, 2);
  Twin out = output(DType::kF16, hd);
  auto batch = ops::VarlenBatch::from_lengths({1});
  Status st = ops::attention_cached(gpu(), q.dev_view(0, Shape{1, hd}), batch, {kv.dev_view(0, Shape{2, hd})},
                                    {kv.dev_view(2 * hd, Shape{2, hd})}, heads, hd, 0.1f, false,
                                    out.dev_view(0, Shape{1, hd}));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kUnsupported);
}

}  // namespace
}  // namespace fathom::cuda

#endif  // FATHOM_WITH_CUDA
