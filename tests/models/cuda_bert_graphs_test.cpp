// BERT-family models on CUDA with whole-forward CUDA graphs (LoadOptions::cuda_graphs): graph replay equals
// the eager forward for every fixture and compute dtype, over several different length mixes in the same
// token bucket (one graph replayed) and across buckets; batched == one-at-a-time with graphs.
#if FATHOM_WITH_CUDA  // CUDA-only test; CPU builds compile nothing here
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "backends/cuda/device.h"
#include "backends/cuda/graph.h"
#include "base/log.h"
#include "formats/tokenizer/tokenizer.h"
#include "models/registry.h"
#include "support/paths.h"

namespace fathom::models {
namespace {

struct Param {
  std::string model;
  DType dtype;
};

class CudaBertGraphs : public ::testing::TestWithParam<Param> {};

std::unique_ptr<Model> load(const std::string& name, DType dtype, bool graphs) {
  LoadOptions opt;
  opt.device = Device::cuda(0);
  opt.dtype = dtype;
  opt.cuda_graphs = graphs;
  auto loaded = Registry::global().load(testing::fixture("models/" + name), opt);
  EXPECT_TRUE(loaded.ok()) << loaded.error().message;
  return loaded.ok() ? std::move(loaded).value() : nullptr;
}

// Batches of `count` random sequences whose lengths sum to `total` (each >= 1 and <= max_len).
std::vector<std::vector<int32_t>> mix(std::mt19937& rng, int count, int total, int max_len, int vocab) {
  std::vector<int> lens(count, 1);
  int left = total - count;
  while (left > 0) {
    int i = static_cast<int>(rng() % count);
    if (lens[i] < max_len) {
      ++lens[i];
      --left;
    }
  }
  std::vector<std::vector<int32_t>> seqs;
  for (int len : lens) {
    std::vector<int32_t> s(len);
    for (auto& id : s) id = static_cast<int32_t>(rng() % vocab);
    seqs.push_back(std::move(s));
  }
  return seqs;
}

TEST_P(CudaBertGraphs, ReplayEqualsEagerAcrossMixesAndBuckets) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const Param p = GetParam();
  auto graphs = load(p.model, p.dtype, true);
  auto eager = load(p.model, p.dtype, false);
  ASSERT_TRUE(graphs && eager);
  Embedder* g = graphs->as_embedder();
  Embedder* e = eager->as_embedder();
  const int dim = g->embedding_dim();
  const int max_len = g->max_input_tokens();
  const int vocab = std::min<int>(g->tokenizer().vocab_size(), 100);  // within every fixture's vocabulary
  // Padded-bucket replay differs from the unpadded eager pass only by GEMM tiling / rounding.
  const double tol = p.dtype == DType::kF32 ? 2e-5 : p.dtype == DType::kF16 ? 5e-3 : 3e-2;
  std::mt19937 rng(7);
  // (count, total tokens): three mixes inside the (33..48] bucket, two inside (49..64], one in (65..96],
  // then a single sequence and a repeat of the first bucket with yet another mix.
  const std::vector<std::pair<int, int>> shapes = {{3, 40}, {7, 44}, {2, 47}, {5, 60}, {9, 63}, {4, 90}, {1, 12}, {6, 37}};
  for (auto [count, total] : shapes) {
    if (total > count * max_len) continue;
    auto seqs = mix(rng, count, total, max_len, vocab);
    auto a = g->embed(seqs);
    auto b = e->embed(seqs);
    ASSERT_TRUE(a.ok()) << a.error().message;
    ASSERT_TRUE(b.ok()) << b.error().message;
    ASSERT_EQ(a->size(), static_cast<std::size_t>(count * dim));
    for (std::size_t i = 0; i < a->size(); ++i)
      ASSERT_NEAR((*a)[i], (*b)[i], tol) << p.model << " " << dtype_name(p.dtype) << " count " << count << " total "
                                         << total << " at " << i;
    // Batched == one at a time, both through graphs.
    for (int s = 0; s < count; s += 2) {
      auto one = g->embed({seqs[s]});
      ASSERT_TRUE(one.ok()) << one.error().message;
      for (int k = 0; k < dim; ++k)
        ASSERT_NEAR((*one)[k], (*a)[s * dim + k], tol) << p.model << " seq " << s << " dim " << k;
    }
  }
  // Replaying a bucket's graph with the same input gives bit-identical output.
  auto seqs = mix(rng, 3, 40, max_len, vocab);
  auto r1 = g->embed(seqs);
  auto r2 = g->embed(seqs);
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(*r1, *r2);
}

// Every token bucket is captured while the model loads (and the load says so in the log); requests of
// any bucket then replay without capturing.
TEST(CudaBertGraphsAtLoad, EveryBucketCapturedWhenTheModelLoads) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const LogLevel saved = log_level();
  set_log_level(LogLevel::kInfo);
  LoadOptions opt;
  opt.device = Device::cuda(0);
  opt.dtype = DType::kF16;
  opt.max_batch_tokens = 1024;
  opt.cuda_graphs = true;
  ::testing::internal::CaptureStderr();
  auto loaded = Registry::global().load(testing::fixture("models/bert-mean-norm"), opt);
  const std::string log = ::testing::internal::GetCapturedStderr();
  set_log_level(saved);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  const std::size_t buckets = cuda::token_buckets(1024).size();
  const std::string want = "captured " + std::to_string(buckets) + " CUDA graphs (token buckets 16..1024, float16) in ";
  EXPECT_NE(log.find(want), std::string::npos) << log;

  opt.cuda_graphs = false;
  auto eager = Registry::global().load(testing::fixture("models/bert-mean-norm"), opt);
  ASSERT_TRUE(eager.ok()) << eager.error().message;
  // The graph arena (activations of the largest bucket) is held from load on.
  EXPECT_GT((*loaded)->memory_bytes(), (*eager)->memory_bytes());
  const std::size_t held = (*loaded)->memory_bytes();

  // Buckets from the smallest to the largest replay at once and match the eager model.
  std::mt19937 rng(3);
  Embedder* g = (*loaded)->as_embedder();
  Embedder* e = (*eager)->as_embedder();
  for (auto [count, total] : std::vector<std::pair<int, int>>{{1, 5}, {4, 100}, {16, 1000}}) {
    const int max_len = g->max_input_tokens();
    if (total > count * max_len) continue;
    auto seqs = mix(rng, count, total, max_len, 100);
    auto a = g->embed(seqs);
    auto b = e->embed(seqs);
    ASSERT_TRUE(a.ok() && b.ok());
    for (std::size_t i = 0; i < a->size(); ++i) ASSERT_NEAR((*a)[i], (*b)[i], 5e-3) << "total " << total << " at " << i;
  }
  EXPECT_EQ((*loaded)->memory_bytes(), held);  // no arena growth: nothing was captured lazily
}

std::vector<Param> params() {
  std::vector<Param> v;
  for (const char* m : {"bert-mean-norm", "bert-mlm-sharded-lasttoken", "roberta-cls", "xlmr-bf16-max"})
    for (DType d : {DType::kF32, DType::kF16, DType::kBF16}) v.push_back({m, d});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaBertGraphs, ::testing::ValuesIn(params()), [](const auto& info) {
  std::string s = info.param.model + "_" + std::string(dtype_name(info.param.dtype));
  for (char& c : s)
    if (c == '-') c = '_';
  return s;
});

}  // namespace
}  // namespace fathom::models

#endif  // FATHOM_WITH_CUDA
