// Cross-encoder / classifier parity against the committed references (scripts/fixtures/make_rerankers.py:
// transformers' *ForSequenceClassification in f32 on the stored weights, 16-bit ones upcast, and
// sentence-transformers' CrossEncoder): pair and single-text token ids, raw logits, labels and the score
// activation, the truncated long pair, and batched == one at a time.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "formats/tokenizer/tokenizer.h"
#include "models/registry.h"
#include "support/paths.h"

namespace fathom::models {
namespace {

using Json = nlohmann::json;

Json read_reference(const std::string& name) {
  std::ifstream in(testing::fixture("models/" + name + ".reference.json"));
  return Json::parse(in);
}

std::vector<int32_t> packed(const std::vector<int32_t>& ids, const std::vector<int32_t>& types) {
  std::vector<int32_t> out(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) out[i] = pack_segment(ids[i], types[i]);
  return out;
}

ScoreActivation expected_activation(const Json& ref) {
  const std::string ce = ref.at("cross_encoder").at("activation").get<std::string>();
  if (ce == "Sigmoid") return ScoreActivation::kSigmoid;
  // A classifier without a stated activation: fathom's scores are probabilities (softmax over labels).
  const bool stated = ref.contains("sentence_transformers_activation_fn") &&
                      ref.at("sentence_transformers_activation_fn").is_string();
  if (ref.at("num_labels").get<int>() > 1 && !stated)
    return ScoreActivation::kSoftmax;
  return ce == "Softmax" ? ScoreActivation::kSoftmax : ScoreActivation::kIdentity;
}

class ClassifierParity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ref_ = read_reference(GetParam());
    auto loaded = Registry::global().load(testing::fixture("models/" + GetParam()), LoadOptions{});
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    model_ = std::move(loaded).value();
    classifier_ = model_->as_classifier();
    ASSERT_NE(classifier_, nullptr);
  }
  Json ref_;
  std::unique_ptr<Model> model_;
  Classifier* classifier_ = nullptr;
};

TEST_P(ClassifierParity, LabelsActivationAndInterfaces) {
  EXPECT_EQ(model_->as_embedder(), nullptr) << "a classification head must not be served as an embedder";
  const int n = ref_.at("num_labels").get<int>();
  ASSERT_EQ(static_cast<int>(classifier_->labels().size()), n);
  for (int i = 0; i < n; ++i) EXPECT_EQ(classifier_->labels()[i], ref_.at("id2label").at(std::to_string(i)));
  EXPECT_EQ(classifier_->max_input_tokens(), ref_.at("max_length").get<int>());
  EXPECT_EQ(classifier_->activation(), expected_activation(ref_));
  const auto& tasks = model_->info().tasks;
  EXPECT_NE(std::find(tasks.begin(), tasks.end(), Task::kClassify), tasks.end());
  // Only a single-logit model scores pairs (rerank / score); a multi-label classifier classifies.
  EXPECT_EQ(std::find(tasks.begin(), tasks.end(), Task::kScore) != tasks.end(), n == 1);
}

TEST_P(ClassifierParity, PairLogitsMatchAndBatchingIsExact) {
  const int n = ref_.at("num_labels").get<int>();
  const auto& tok = classifier_->tokenizer();
  std::vector<std::vector<int32_t>> batch;
  for (const auto& c : ref_.at("pairs")) {
    auto enc = tok.encode_pair(c.at("query").get<std::string>(), c.at("document").get<std::string>());
    ASSERT_TRUE(enc.ok()) << enc.error().message;
    EXPECT_EQ(enc->ids, c.at("token_ids").get<std::vector<int32_t>>()) << c.at("query") << " / " << c.at("document");
    EXPECT_EQ(enc->type_ids, c.at("token_type_ids").get<std::vector<int32_t>>()) << c.at("document");
    batch.push_back(packed(enc->ids, enc->type_ids));
  }
  ASSERT_GE(batch.size(), 8u);
  auto all = classifier_->classify(batch);
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->size(), batch.size() * n);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto& c = ref_.at("pairs")[i];
    const auto want = c.at("logits").get<std::vector<float>>();
    for (int k = 0; k < n; ++k) EXPECT_NEAR((*all)[i * n + k], want[k], 1e-5) << "pair " << i << " label " << k;
    if (c.contains("ce_raw")) {  // the CrossEncoder's own (padded, batched) logits agree too
      const auto ce = c.at("ce_raw").get<std::vector<float>>();
      for (int k = 0; k < n; ++k) EXPECT_NEAR((*all)[i * n + k], ce[k], 2e-5) << "pair " << i;
    }
    auto one = classifier_->classify({batch[i]});
    ASSERT_TRUE(one.ok()) << one.error().message;
    for (int k = 0; k < n; ++k) EXPECT_NEAR((*one)[k], (*all)[i * n + k], 1e-6) << "pair " << i << " alone vs batched";
  }
}

TEST_P(ClassifierParity, SingleTextLogitsMatch) {
  const int n = ref_.at("num_labels").get<int>();
  const auto& tok = classifier_->tokenizer();
  std::vector<std::vector<int32_t>> batch;
  for (const auto& c : ref_.at("singles")) {
    auto ids = tok.encode(c.at("text").get<std::string>());
    ASSERT_TRUE(ids.ok()) << ids.error().message;
    EXPECT_EQ(*ids, c.at("token_ids").get<std::vector<int32_t>>()) << c.at("text");
    batch.push_back(packed(*ids, c.at("token_type_ids").get<std::vector<int32_t>>()));
  }
  auto all = classifier_->classify(batch);
  ASSERT_TRUE(all.ok()) << all.error().message;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto want = ref_.at("singles")[i].at("logits").get<std::vector<float>>();
    for (int k = 0; k < n; ++k) EXPECT_NEAR((*all)[i * n + k], want[k], 1e-5) << ref_.at("singles")[i].at("text");
  }
}

TEST_P(ClassifierParity, LongPairIsTruncatedOnTheDocumentSide) {
  const auto& c = ref_.at("long_pair");
  const int limit = c.at("max_length").get<int>();
  const auto& tok = classifier_->tokenizer();
  auto full = tok.encode_pair(c.at("query").get<std::string>(), c.at("document").get<std::string>());
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(static_cast<int>(full->ids.size()), c.at("full_length").get<int>());
  auto cut = tok.encode_pair(c.at("query").get<std::string>(), c.at("document").get<std::string>(), limit);
  ASSERT_TRUE(cut.ok()) << cut.error().message;
  EXPECT_EQ(cut->ids, c.at("token_ids").get<std::vector<int32_t>>());
  EXPECT_EQ(cut->type_ids, c.at("token_type_ids").get<std::vector<int32_t>>());
  auto logits = classifier_->classify({packed(cut->ids, cut->type_ids)});
  ASSERT_TRUE(logits.ok()) << logits.error().message;
  const auto want = c.at("logits").get<std::vector<float>>();
  for (std::size_t k = 0; k < want.size(); ++k) EXPECT_NEAR((*logits)[k], want[k], 1e-5);
  // Over the model's limit, the sequence is refused rather than cut or read past the position table.
  auto over = classifier_->classify({packed(full->ids, full->type_ids)});
  EXPECT_FALSE(over.ok());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ClassifierParity,
                         ::testing::Values("bert-rerank-f16", "xlmr-rerank-f32", "xlmr-rerank-bf16", "roberta-nli-f32",
                                           "modernbert-rerank-mean", "modernbert-nli-bf16-cls"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n) if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace fathom::models
