// BERT-family parity against the committed sentence-transformers references (computed in f32 by
// transformers from the same checkpoints, 16-bit ones upcast), plus batched == one-at-a-time.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "formats/tokenizer/tokenizer.h"
#include "models/registry.h"
#include "support/paths.h"

namespace fathom::models {
namespace {

struct Case {
  std::string text;
  std::vector<int32_t> ids;
  std::vector<float> embedding;
  bool truncated = false;
};

struct Reference {
  bool normalize = false;
  int max_seq_length = 0;
  std::string architecture;
  std::string pooling;
  std::vector<Case> cases;
};

Reference read_reference(const std::string& name) {
  std::ifstream in(testing::fixture("models/" + name + ".reference.json"));
  auto j = nlohmann::json::parse(in);
  Reference r;
  r.normalize = j.at("normalize").get<bool>();
  r.max_seq_length = j.at("max_seq_length").get<int>();
  r.architecture = j.at("architecture").get<std::string>();
  r.pooling = j.at("pooling").get<std::string>();
  for (const auto& c : j.at("cases"))
    r.cases.push_back({c.at("text").get<std::string>(), c.at("token_ids").get<std::vector<int32_t>>(),
                       c.at("embedding").get<std::vector<float>>(), c.at("truncated").get<bool>()});
  return r;
}

std::vector<float> normalized(std::vector<float> v) {
  double n = 0;
  for (float x : v) n += static_cast<double>(x) * x;
  n = std::max(std::sqrt(n), 1e-12);
  for (float& x : v) x = static_cast<float>(x / n);
  return v;
}

class BertParity : public ::testing::TestWithParam<std::string> {};

TEST_P(BertParity, MatchesReferenceAndBatchingIsExact) {
  const std::string name = GetParam();
  const Reference ref = read_reference(name);
  auto loaded = Registry::global().load(testing::fixture("models/" + name), LoadOptions{});
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  Model& model = **loaded;
  EXPECT_EQ(model.architecture(), ref.architecture);
  EXPECT_EQ(model.dtype(), DType::kF32);
  EXPECT_GT(model.memory_bytes(), 0u);
  Embedder* e = model.as_embedder();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->normalizes_by_default(), ref.normalize);
  EXPECT_EQ(e->max_input_tokens(), ref.max_seq_length);
  ASSERT_FALSE(ref.cases.empty());
  EXPECT_EQ(e->embedding_dim(), static_cast<int>(ref.cases[0].embedding.size()));

  std::vector<std::vector<int32_t>> all;
  bool saw_truncated = false;
  for (const auto& c : ref.cases) {
    all.push_back(c.ids);
    saw_truncated = saw_truncated || c.truncated;
  }
  EXPECT_TRUE(saw_truncated) << "the reference should include a case at the length limit";
  auto batched = e->embed(all);
  ASSERT_TRUE(batched.ok()) << batched.error().message;
  const int dim = e->embedding_dim();
  ASSERT_EQ(batched->size(), all.size() * static_cast<std::size_t>(dim));

  // f32 references; 16-bit checkpoints were upcast to f32 by the reference too, so the same bound holds.
  constexpr double kMinCosine = 0.99999, kMaxAbs = 1e-5;
  for (std::size_t i = 0; i < ref.cases.size(); ++i) {
    std::vector<float> got(batched->begin() + static_cast<long>(i) * dim, batched->begin() + static_cast<long>(i + 1) * dim);
    if (ref.normalize) got = normalized(got);
    const auto& want = ref.cases[i].embedding;
    double dot = 0, ng = 0, nw = 0, max_abs = 0;
    for (int k = 0; k < dim; ++k) {
      dot += static_cast<double>(got[k]) * want[k];
      ng += static_cast<double>(got[k]) * got[k];
      nw += static_cast<double>(want[k]) * want[k];
      max_abs = std::max(max_abs, std::abs(static_cast<double>(got[k]) - want[k]));
    }
    const double cosine = dot / std::sqrt(ng * nw);
    EXPECT_GE(cosine, kMinCosine) << name << " case " << i;
    EXPECT_LE(max_abs, kMaxAbs) << name << " case " << i;

    // One at a time gives the same vector (packing must not leak between sequences).
    auto single = e->embed({ref.cases[i].ids});
    ASSERT_TRUE(single.ok());
    for (int k = 0; k < dim; ++k)
      ASSERT_NEAR((*single)[k], (*batched)[i * dim + k], 1e-6) << name << " case " << i << " dim " << k;
  }
}

// The model directory's own tokenizer (as /v1/embeddings uses it) gives the reference's ids, truncated
// to the model's input limit as sentence-transformers truncates.
TEST_P(BertParity, ModelTokenizerGivesTheReferenceIds) {
  const std::string name = GetParam();
  const Reference ref = read_reference(name);
  auto loaded = Registry::global().load(testing::fixture("models/" + name), LoadOptions{});
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  Embedder* e = (*loaded)->as_embedder();
  ASSERT_NE(e, nullptr);
  formats::EncodeOptions options;
  options.max_length = e->max_input_tokens();
  for (const auto& c : ref.cases) {
    auto ids = e->tokenizer().encode(c.text, options);
    ASSERT_TRUE(ids.ok()) << ids.error().message;
    EXPECT_EQ(*ids, c.ids) << name << ": " << c.text;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, BertParity,
                         ::testing::Values("bert-mean-norm", "bert-mlm-sharded-lasttoken", "roberta-cls", "xlmr-bf16-max",
                                           "xlmr-unigram-mean"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

TEST(BertModel, MatryoshkaAndPoolingFromConfig) {
  auto m = Registry::global().load(testing::fixture("models/bert-mean-norm"), LoadOptions{});
  ASSERT_TRUE(m.ok()) << m.error().message;
  Embedder* e = (*m)->as_embedder();
  EXPECT_TRUE(e->supports_matryoshka());
  EXPECT_EQ(e->matryoshka_dimensions(), (std::vector<int>{8, 16, 32}));
  auto r = Registry::global().load(testing::fixture("models/roberta-cls"), LoadOptions{});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE((*r)->as_embedder()->supports_matryoshka());
  EXPECT_TRUE((*r)->as_embedder()->matryoshka_dimensions().empty());
  EXPECT_EQ((*r)->as_embedder()->tokenizer().vocab_size(), 8005);
}

TEST(BertModel, BadInputsAreErrorsNotCrashes) {
  auto m = Registry::global().load(testing::fixture("models/bert-mean-norm"), LoadOptions{});
  ASSERT_TRUE(m.ok());
  Embedder* e = (*m)->as_embedder();
  auto empty = e->embed({{101, 102}, {}});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("input 1"), std::string::npos);
  auto oov = e->embed({{101, 999999, 102}});
  ASSERT_FALSE(oov.ok());
  EXPECT_NE(oov.error().message.find("999999"), std::string::npos);
  auto negative = e->embed({{-1}});
  EXPECT_FALSE(negative.ok());
  auto too_long = e->embed({std::vector<int32_t>(static_cast<std::size_t>(e->max_input_tokens()) + 1, 100)});
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error().code, ErrorCode::kTooLarge);
  auto none = e->embed({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  // The model still works after the errors.
  EXPECT_TRUE(e->embed({{101, 7592, 102}}).ok());
}

TEST(BertModel, MemoryBudgetIsEnforcedAtLoad) {
  LoadOptions small;
  small.memory_budget = 64 * 1024;  // far below the 3.9 MB of word embeddings
  auto m = Registry::global().load(testing::fixture("models/bert-mean-norm"), small);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::kOutOfMemory);
  EXPECT_NE(m.error().message.find("budget"), std::string::npos);
}

TEST(BertModel, CpuRejectsHalfComputeAndMissingDevices) {
  LoadOptions half;
  half.dtype = DType::kF16;
  auto m = Registry::global().load(testing::fixture("models/bert-mean-norm"), half);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(m.error().message.find("float16"), std::string::npos);
}

}  // namespace
}  // namespace fathom::models
