// Cross-encoders / classifiers on CUDA against the committed references (the same model code as on CPU,
// through the ops' CUDA dispatch): every compute dtype, eager and CUDA-graph paths, batched == one at a time.
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
  std::optional<DType> dtype;  // nullopt: auto (the checkpoint's own type)
  bool graphs = true;
};

class CudaClassifier : public ::testing::TestWithParam<Param> {};

TEST_P(CudaClassifier, LogitsMatchReferenceBatchedEqualsSingle) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const Param p = GetParam();
  std::ifstream in(testing::fixture("models/" + p.model + ".reference.json"));
  const auto ref = nlohmann::json::parse(in);
  LoadOptions opt;
  opt.device = Device::cuda(0);
  opt.dtype = p.dtype;
  opt.cuda_graphs = p.graphs;
  auto loaded = Registry::global().load(testing::fixture("models/" + p.model), opt);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  Classifier* c = (*loaded)->as_classifier();
  ASSERT_NE(c, nullptr);
  const int n = ref.at("num_labels").get<int>();
  const DType dt = (*loaded)->dtype();
  // f32 compute matches transformers' f32 closely; 16-bit activations round at every layer.
  const double tol = dt == DType::kF32 ? 1e-4 : (dt == DType::kF16 ? 2e-2 : 6e-2);
  std::vector<std::vector<int32_t>> batch;
  for (const auto& pc : ref.at("pairs")) {
    auto ids = pc.at("token_ids").get<std::vector<int32_t>>();
    auto types = pc.at("token_type_ids").get<std::vector<int32_t>>();
    for (std::size_t k = 0; k < ids.size(); ++k) ids[k] = pack_segment(ids[k], types[k]);
    batch.push_back(std::move(ids));
  }
  auto all = c->classify(batch);
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->size(), batch.size() * n);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto want = ref.at("pairs")[i].at("logits").get<std::vector<float>>();
    for (int k = 0; k < n; ++k) EXPECT_NEAR((*all)[i * n + k], want[k], tol) << "pair " << i << " dtype " << dtype_name(dt);
    auto one = c->classify({batch[i]});
    ASSERT_TRUE(one.ok()) << one.error().message;
    for (int k = 0; k < n; ++k)
      EXPECT_NEAR((*one)[k], (*all)[i * n + k], dt == DType::kF32 ? 1e-5 : tol) << "pair " << i << " alone vs batched";
  }
}

std::vector<Param> params() {
  std::vector<Param> out;
  for (const char* m : {"bert-rerank-f16", "xlmr-rerank-f32", "xlmr-rerank-bf16", "roberta-nli-f32",
                        "modernbert-rerank-mean", "modernbert-nli-bf16-cls"}) {
    for (auto dt : {std::optional<DType>(DType::kF32), std::optional<DType>(DType::kF16),
                    std::optional<DType>(DType::kBF16), std::optional<DType>()})
      out.push_back({m, dt, true});
    out.push_back({m, DType::kF32, false});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaClassifier, ::testing::ValuesIn(params()), [](const auto& info) {
  std::string n = info.param.model + "_" + std::string(info.param.dtype ? dtype_name(*info.param.dtype) : std::string_view("auto")) +
                  (info.param.graphs ? "" : "_eager");
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
});

}  // namespace
}  // namespace fathom::models
#endif  // FATHOM_WITH_CUDA
