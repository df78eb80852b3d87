// bge-m3 style checkpoints (XLM-R encoder + FlagEmbedding's sparse_linear.pt / colbert_linear.pt) against the
// references of scripts/fixtures/make_bge_m3.py: the dense embedding, the lexical weights and the colbert
// vectors of every text, batched equal to one text at a time, on the CPU (f32) and, where a GPU is present,
// on CUDA in f32 / f16 / bf16. Loading refuses half a pair of heads, naming the missing file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "engine/embedding_postprocess.h"
#include "models/registry.h"
#include "support/paths.h"
#include "support/temp_dir.h"
#if FATHOM_WITH_CUDA
#include "backends/cuda/device.h"
#endif

namespace fathom::models {
namespace {

struct Param {
  std::string model;
  DType dtype;
  bool cuda;
};

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  std::string n = info.param.model + "_" + std::string(dtype_name(info.param.dtype)) + (info.param.cuda ? "_cuda" : "_cpu");
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

nlohmann::json reference(const std::string& name) {
  std::ifstream in(testing::fixture("models/" + name + ".reference.json"));
  return nlohmann::json::parse(in);
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i)
    ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
  return ab / std::sqrt(aa * bb);
}

class BgeM3 : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
#if FATHOM_WITH_CUDA
    if (GetParam().cuda && cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
#else
    if (GetParam().cuda) GTEST_SKIP() << "built without CUDA";
#endif
    ref_ = reference(GetParam().model);
    LoadOptions opt;
    opt.dtype = GetParam().dtype;
    if (GetParam().cuda) opt.device = Device::cuda(0);
    auto loaded = Registry::global().load(testing::fixture("models/" + GetParam().model), opt);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    model_ = std::move(loaded).value();
    e_ = model_->as_embedder();
    ASSERT_NE(e_, nullptr);
    for (const auto& c : ref_.at("cases")) ids_.push_back(c.at("token_ids").get<std::vector<int32_t>>());
  }
  bool f32() const { return GetParam().dtype == DType::kF32; }
  // Bounds: f32 as every parity test (cosine 0.99999, values 1e-5 apart); 16-bit compute follows the f32
  // reference only as closely as its rounding allows.
  double min_cos() const { return f32() ? 0.99999 : (GetParam().dtype == DType::kF16 ? 0.999 : 0.99); }
  double max_abs() const { return f32() ? 1e-5 : (GetParam().dtype == DType::kF16 ? 5e-3 : 3e-2); }

  nlohmann::json ref_;
  std::unique_ptr<Model> model_;
  Embedder* e_ = nullptr;
  std::vector<std::vector<int32_t>> ids_;
};

TEST_P(BgeM3, DeclaresSparseAndColbert) {
  const auto outputs = e_->token_outputs();
  ASSERT_EQ(outputs.size(), 2u);
  EXPECT_EQ(outputs[0], TokenOutput::kSparse);
  EXPECT_EQ(outputs[1], TokenOutput::kColbert);
  EXPECT_EQ(e_->token_output_width(TokenOutput::kSparse), 1);
  EXPECT_EQ(e_->token_output_width(TokenOutput::kColbert), ref_.at("colbert_dim").get<int>());
  EXPECT_TRUE(e_->normalizes_by_default());
}

TEST_P(BgeM3, DenseFollowsTheReference) {
  auto all = e_->embed(ids_);
  ASSERT_TRUE(all.ok()) << all.error().message;
  const std::size_t dim = static_cast<std::size_t>(e_->embedding_dim());
  ASSERT_EQ(all->size(), ids_.size() * dim);
  for (std::size_t i = 0; i < ids_.size(); ++i) {
    std::vector<float> got(all->begin() + static_cast<long>(i * dim), all->begin() + static_cast<long>((i + 1) * dim));
    engine::finish_embedding(got, std::nullopt, true);
    const auto want = ref_.at("cases")[i].at("embedding").get<std::vector<float>>();
    EXPECT_GE(cosine(got, want), min_cos()) << "text " << i;
    for (std::size_t k = 0; k < dim; ++k) EXPECT_NEAR(got[k], want[k], max_abs()) << "text " << i << " dim " << k;
  }
}

TEST_P(BgeM3, LexicalWeightsFollowTheReferenceBatchedEqualsSingle) {
  auto all = e_->embed_tokens(ids_, TokenOutput::kSparse);
  ASSERT_TRUE(all.ok()) << all.error().message;
  std::size_t at = 0, compared = 0;
  for (std::size_t i = 0; i < ids_.size(); ++i) {
    const std::vector<float> weights(all->begin() + static_cast<long>(at),
                                     all->begin() + static_cast<long>(at + ids_[i].size()));
    at += ids_[i].size();
    std::map<int32_t, float> got;
    for (const auto& [id, w] : engine::lexical_weights(ids_[i], weights)) got[id] = w;
    std::map<int32_t, float> want;
    for (const auto& [id, w] : ref_.at("cases")[i].at("lexical_weights").items()) want[std::stoi(id)] = w.get<float>();
    // 16-bit compute may move a weight across 0 (relu); f32 must give exactly the reference's token set.
    if (f32()) EXPECT_EQ(got.size(), want.size()) << "text " << i;
    for (const auto& [id, w] : want) {
      const float g = got.count(id) ? got[id] : 0.0f;
      // A weight is one dot product of the hidden state with the head's row (norm ~2.3 in these fixtures), so
      // 16-bit hidden-state error is amplified: f16 gets 1e-2, bf16 3e-2, scaled by |w| above 1 (weights reach ~4).
      const double bound = f32() ? max_abs() : std::max(1e-2, max_abs()) * std::max(1.0f, std::abs(w));
      EXPECT_NEAR(g, w, bound) << "text " << i << " token " << id;
      ++compared;
    }
    for (int32_t ignored : ref_.at("unused_token_ids").get<std::vector<int32_t>>())
      EXPECT_EQ(got.count(ignored), 0u) << "text " << i << ": the tokenizer's special id " << ignored << " is left out";
    auto one = e_->embed_tokens({ids_[i]}, TokenOutput::kSparse);
    ASSERT_TRUE(one.ok()) << one.error().message;
    ASSERT_EQ(one->size(), weights.size());
    for (std::size_t k = 0; k < weights.size(); ++k)
      EXPECT_NEAR((*one)[k], weights[k], f32() ? 1e-5 : 2e-3) << "text " << i << " position " << k;
  }
  EXPECT_EQ(at, all->size());
  EXPECT_GT(compared, 20u);
}

TEST_P(BgeM3, ColbertVectorsFollowTheReferenceBatchedEqualsSingle) {
  auto all = e_->embed_tokens(ids_, TokenOutput::kColbert);
  ASSERT_TRUE(all.ok()) << all.error().message;
  const int width = e_->token_output_width(TokenOutput::kColbert);
  std::size_t at = 0;
  for (std::size_t i = 0; i < ids_.size(); ++i) {
    const std::size_t n = token_output_rows(TokenOutput::kColbert, ids_[i].size()) * static_cast<std::size_t>(width);
    const std::vector<float> rows(all->begin() + static_cast<long>(at), all->begin() + static_cast<long>(at + n));
    at += n;
    const auto got = engine::multi_vectors(rows, width, true);
    const auto want = ref_.at("cases")[i].at("colbert");
    ASSERT_EQ(got.size(), want.size()) << "text " << i << ": one vector per token after the first";
    for (std::size_t r = 0; r < got.size(); ++r) {
      const auto w = want[r].get<std::vector<float>>();
      EXPECT_GE(cosine(got[r], w), min_cos()) << "text " << i << " row " << r;
      for (std::size_t k = 0; k < w.size(); ++k) EXPECT_NEAR(got[r][k], w[k], max_abs()) << "text " << i << " row " << r;
    }
    auto one = e_->embed_tokens({ids_[i]}, TokenOutput::kColbert);
    ASSERT_TRUE(one.ok()) << one.error().message;
    ASSERT_EQ(one->size(), n);
    for (std::size_t k = 0; k < n; ++k) EXPECT_NEAR((*one)[k], rows[k], f32() ? 1e-5 : 5e-3) << "text " << i;
  }
  EXPECT_EQ(at, all->size());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, BgeM3,
                         ::testing::Values(Param{"bge-m3-f32", DType::kF32, false},
                                           Param{"bge-m3-bf16-d24", DType::kF32, false},
                                           Param{"bge-m3-f32", DType::kF32, true},
                                           Param{"bge-m3-bf16-d24", DType::kF32, true},
                                           Param{"bge-m3-f32", DType::kF16, true},
                                           Param{"bge-m3-bf16-d24", DType::kBF16, true}),
                         param_name);

// A private copy of the bge-m3-f32 fixture to damage; removed when it goes out of scope.
struct FixtureCopy : testing::TempDir {
  FixtureCopy() : testing::TempDir("fathom_bge_m3") {
    std::filesystem::copy(testing::fixture("models/bge-m3-f32"), path(), std::filesystem::copy_options::recursive);
  }
};

TEST(BgeM3Load, HalfAPairOfHeadsIsALoadErrorNamingTheMissingFile) {
  FixtureCopy dir;
  std::filesystem::remove(dir.path() / "colbert_linear.pt");
  auto loaded = Registry::global().load(dir.path(), LoadOptions{});
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().message.find("colbert_linear.pt is missing"), std::string::npos) << loaded.error().message;
}

TEST(BgeM3Load, ADamagedHeadFileIsALoadErrorNamingIt) {
  FixtureCopy dir;
  std::ofstream(dir.path() / "sparse_linear.pt", std::ios::binary | std::ios::trunc) << "PK\x03\x04 not really a zip";
  auto loaded = Registry::global().load(dir.path(), LoadOptions{});
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().message.find("sparse_linear.pt"), std::string::npos) << loaded.error().message;
}

TEST(BgeM3Load, AnEmbedderWithoutTheHeadsHasNoTokenOutputs) {
  auto loaded = Registry::global().load(testing::fixture("models/xlmr-unigram-mean"), LoadOptions{});
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  Embedder* e = (*loaded)->as_embedder();
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->token_outputs().empty());
  auto r = e->embed_tokens({{0, 5, 2}}, TokenOutput::kSparse);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnsupported);
}

}  // namespace
}  // namespace fathom::models
