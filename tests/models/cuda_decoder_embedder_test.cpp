// Decoder-LLM embedding models (Qwen3-Embedding layout) on CUDA against the committed references: f32
// close to transformers' f32, f16 / bf16 following it, the left-padded reference batch's results equal to
// fathom's packed batch, one text at a time equal to the batch.
#if FATHOM_WITH_CUDA  // CUDA-only test; CPU builds compile nothing here
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "backends/cuda/device.h"
#include "models/registry.h"
#include "support/paths.h"

namespace fathom::models {
namespace {

struct Param {
  std::string model;
  DType dtype;
};

double cosine(const float* a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < b.size(); ++i) ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
  return ab / std::sqrt(aa * bb);
}

class CudaDecoderEmbedder : public ::testing::TestWithParam<Param> {};

TEST_P(CudaDecoderEmbedder, EmbeddingsFollowTheReferenceBatchedEqualsSingle) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const Param p = GetParam();
  std::ifstream in(testing::fixture("models/" + p.model + ".reference.json"));
  const auto ref = nlohmann::json::parse(in);
  LoadOptions opt;
  opt.device = Device::cuda(0);
  opt.dtype = p.dtype;
  auto loaded = Registry::global().load(testing::fixture("models/" + p.model), opt);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  Embedder* e = (*loaded)->as_embedder();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ((*loaded)->dtype(), p.dtype);
  std::vector<std::vector<int32_t>> batch;
  for (const auto& c : ref.at("cases")) batch.push_back(c.at("token_ids").get<std::vector<int32_t>>());
  auto all = e->embed(batch);
  ASSERT_TRUE(all.ok()) << all.error().message;
  const std::size_t dim = static_cast<std::size_t>(e->embedding_dim());
  ASSERT_EQ(all->size(), batch.size() * dim);
  const double min_cos = p.dtype == DType::kF32 ? 0.99999 : (p.dtype == DType::kF16 ? 0.999 : 0.99);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto hidden = ref.at("cases")[i].at("last_hidden").get<std::vector<float>>();
    EXPECT_GE(cosine(all->data() + i * dim, hidden), min_cos) << "text " << i << " " << dtype_name(p.dtype);
    if (p.dtype == DType::kF32)
      for (std::size_t k = 0; k < dim; ++k) EXPECT_NEAR((*all)[i * dim + k], hidden[k], 1e-3) << "text " << i << " dim " << k;
    auto one = e->embed({batch[i]});
    ASSERT_TRUE(one.ok()) << one.error().message;
    EXPECT_GE(cosine(one->data(), std::vector<float>(all->begin() + i * dim, all->begin() + (i + 1) * dim)),
              p.dtype == DType::kF32 ? 0.999999 : 0.9999)
        << "text " << i << " alone vs batched";
  }
}

std::vector<Param> params() {
  std::vector<Param> out;
  for (const char* m : {"qwen3-embed-f32", "qwen3-embed-bf16", "qwen3-embed-f16-d64"})
    for (DType d : {DType::kF32, DType::kF16, DType::kBF16}) out.push_back({m, d});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaDecoderEmbedder, ::testing::ValuesIn(params()), [](const auto& info) {
  std::string n = info.param.model + "_" + std::string(dtype_name(info.param.dtype));
  for (char& ch : n)
    if (ch == '-') ch = '_';
  return n;
});

}  // namespace
}  // namespace fathom::models
#endif  // FATHOM_WITH_CUDA
