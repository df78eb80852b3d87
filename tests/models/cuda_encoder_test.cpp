// The encoder families (MPNet, NomicBERT, GTE, ModernBERT) on CUDA — the same model implementation as on
// CPU, through the ops' CUDA dispatch — against the committed references for every compute dtype, with
// and without CUDA graphs, plus batched == one-at-a-time and CUDA f32 == CPU.
#if FATHOM_WITH_CUDA  // CUDA-only test; CPU builds compile nothing here
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "backends/cuda/device.h"
#include "models/registry.h"
#include "support/paths.h"
#include "support/vectors.h"

namespace fathom::models {
namespace {

using fathom::testing::cosine;

struct Param {
  std::string model;
  std::optional<DType> dtype;  // nullopt: auto
  bool graphs = true;
};

class CudaEncoder : public ::testing::TestWithParam<Param> {};

TEST_P(CudaEncoder, MatchesReferenceBatchedEqualsSingle) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const Param p = GetParam();
  std::ifstream in(testing::fixture("models/" + p.model + ".reference.json"));
  const auto ref = nlohmann::json::parse(in);
  std::vector<std::vector<int32_t>> ids;
  std::vector<std::vector<float>> emb;
  for (const auto& c : ref.at("cases")) {
    ids.push_back(c.at("token_ids").get<std::vector<int32_t>>());
    emb.push_back(c.at("embedding").get<std::vector<float>>());
  }
  LoadOptions opt;
  opt.device = Device::cuda(0);
  opt.dtype = p.dtype;
  opt.cuda_graphs = p.graphs;
  opt.max_batch_tokens = 1024;
  auto loaded = Registry::global().load(testing::fixture("models/" + p.model), opt);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  Model& m = **loaded;
  const DType dt = m.dtype();
  if (p.dtype) EXPECT_EQ(dt, *p.dtype);
  Embedder* e = m.as_embedder();
  ASSERT_NE(e, nullptr);
  auto batched = e->embed(ids);
  ASSERT_TRUE(batched.ok()) << batched.error().message;
  const int dim = e->embedding_dim();
  const double min_cos = dt == DType::kF32 ? 0.99999 : 0.999;
  const double single_tol = dt == DType::kF32 ? 1e-5 : dt == DType::kF16 ? 5e-3 : 3e-2;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const float* got = batched->data() + i * dim;
    EXPECT_GE(cosine(got, emb[i].data(), dim), min_cos) << p.model << " " << dtype_name(dt) << " case " << i;
    auto single = e->embed({ids[i]});
    ASSERT_TRUE(single.ok()) << single.error().message;
    for (int k = 0; k < dim; ++k)
      ASSERT_NEAR((*single)[k], got[k], single_tol) << p.model << " " << dtype_name(dt) << " case " << i << " dim " << k;
  }
  if (dt == DType::kF32) {
    auto cpu = Registry::global().load(testing::fixture("models/" + p.model), LoadOptions{});
    ASSERT_TRUE(cpu.ok());
    auto c = (*cpu)->as_embedder()->embed(ids);
    ASSERT_TRUE(c.ok());
    for (std::size_t i = 0; i < c->size(); ++i) ASSERT_NEAR((*c)[i], (*batched)[i], 2e-5) << p.model << " at " << i;
  }
}

std::vector<Param> params() {
  std::vector<Param> v;
  for (const char* m : {"mpnet-mean-norm", "mpnet-f16-cls", "nomic-mean-norm", "nomic-f16-cls-bias", "gte-ntk-cls-norm",
                        "gte-bf16-mean", "modernbert-mean", "modernbert-bf16-cls-norm", "modernbert-f16-d64"}) {
    for (std::optional<DType> d : {std::optional<DType>(DType::kF32), std::optional<DType>(DType::kF16),
                                   std::optional<DType>(DType::kBF16), std::optional<DType>()})
      v.push_back({m, d, true});
    v.push_back({m, DType::kF32, false});  // eager
  }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaEncoder, ::testing::ValuesIn(params()), [](const auto& info) {
  std::string s = info.param.model + "_" + (info.param.dtype ? std::string(dtype_name(*info.param.dtype)) : "auto") +
                  (info.param.graphs ? "" : "_eager");
  for (char& c : s)
    if (c == '-') c = '_';
  return s;
});

}  // namespace
}  // namespace fathom::models

#endif  // FATHOM_WITH_CUDA
