// BERT-family models on CUDA (the same model implementation as on CPU, running through the ops' CUDA
// dispatch) against the committed references, for every compute dtype, plus batched == one-at-a-time
// and CUDA == CPU.
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

struct Ref {
  bool normalize = false;
  std::vector<std::vector<int32_t>> ids;
  std::vector<std::vector<float>> emb;
};

Ref read_ref(const std::string& name) {
  std::ifstream in(testing::fixture("models/" + name + ".reference.json"));
  auto j = nlohmann::json::parse(in);
  Ref r;
  r.normalize = j.at("normalize").get<bool>();
  for (const auto& c : j.at("cases")) {
    r.ids.push_back(c.at("token_ids").get<std::vector<int32_t>>());
    r.emb.push_back(c.at("embedding").get<std::vector<float>>());
  }
  return r;
}

struct Param {
  std::string model;
  std::optional<DType> dtype;  // nullopt: auto
};

class CudaBert : public ::testing::TestWithParam<Param> {};

TEST_P(CudaBert, MatchesReferenceBatchedEqualsSingle) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const Param p = GetParam();
  const Ref ref = read_ref(p.model);
  LoadOptions opt;
  opt.device = Device::cuda(0);
  opt.dtype = p.dtype;
  auto loaded = Registry::global().load(testing::fixture("models/" + p.model), opt);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  Model& m = **loaded;
  EXPECT_EQ(m.device(), Device::cuda(0));
  const DType dt = m.dtype();
  if (p.dtype) EXPECT_EQ(dt, *p.dtype);
  else if (p.model == "xlmr-bf16-max") EXPECT_EQ(dt, DType::kBF16);  // auto keeps the checkpoint's 16-bit type
  else if (p.model == "bert-mlm-sharded-lasttoken") EXPECT_EQ(dt, DType::kF16);
  else EXPECT_EQ(dt, DType::kF16);  // f32 checkpoints compute in f16 on CUDA by default
  Embedder* e = m.as_embedder();
  ASSERT_NE(e, nullptr);
  auto batched = e->embed(ref.ids);
  ASSERT_TRUE(batched.ok()) << batched.error().message;
  const int dim = e->embedding_dim();
  const double min_cos = dt == DType::kF32 ? 0.99999 : 0.999;
  const double single_tol = dt == DType::kF32 ? 1e-5 : dt == DType::kF16 ? 5e-3 : 3e-2;
  for (std::size_t i = 0; i < ref.ids.size(); ++i) {
    const float* got = batched->data() + i * dim;
    EXPECT_GE(cosine(got, ref.emb[i].data(), dim), min_cos) << p.model << " " << dtype_name(dt) << " case " << i;
    auto single = e->embed({ref.ids[i]});
    ASSERT_TRUE(single.ok()) << single.error().message;
    for (int k = 0; k < dim; ++k)
      ASSERT_NEAR((*single)[k], got[k], single_tol) << p.model << " " << dtype_name(dt) << " case " << i << " dim " << k;
  }
  // The CPU model (same implementation) agrees with the f32 CUDA run to f32 rounding.
  if (dt == DType::kF32) {
    auto cpu = Registry::global().load(testing::fixture("models/" + p.model), LoadOptions{});
    ASSERT_TRUE(cpu.ok());
    auto c = (*cpu)->as_embedder()->embed(ref.ids);
    ASSERT_TRUE(c.ok());
    for (std::size_t i = 0; i < c->size(); ++i) ASSERT_NEAR((*c)[i], (*batched)[i], 2e-5) << p.model << " at " << i;
  }
}

std::vector<Param> params() {
  std::vector<Param> v;
  for (const char* m : {"bert-mean-norm", "bert-mlm-sharded-lasttoken", "roberta-cls", "xlmr-bf16-max"})
    for (std::optional<DType> d : {std::optional<DType>(DType::kF32), std::optional<DType>(DType::kF16),
                                   std::optional<DType>(DType::kBF16), std::optional<DType>()})
      v.push_back({m, d});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaBert, ::testing::ValuesIn(params()), [](const auto& info) {
  std::string s = info.param.model + "_" + (info.param.dtype ? std::string(dtype_name(*info.param.dtype)) : "auto");
  for (char& c : s)
    if (c == '-') c = '_';
  return s;
});

TEST(CudaBertLoad, MissingDeviceIsAnError) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  LoadOptions opt;
  opt.device = Device::cuda(cuda::device_count());  // one past the last
  auto loaded = Registry::global().load(testing::fixture("models/bert-mean-norm"), opt);
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().message.find("does not exist"), std::string::npos);
}

}  // namespace
}  // namespace fathom::models

#endif  // FATHOM_WITH_CUDA
