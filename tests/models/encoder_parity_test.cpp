// Parity of the encoder families on the shared encoder runtime (MPNet, NomicBERT, GTE "NewModel",
// ModernBERT) against the references of scripts/fixtures/make_encoders.py (f32, 16-bit checkpoints upcast
// by the reference as fathom's CPU path upcasts them), batched == one at a time, and the model's own
// tokenizer giving the reference ids.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "formats/tokenizer/tokenizer.h"
#include "models/mpnet/mpnet_model.h"
#include "models/registry.h"
#include "support/paths.h"

namespace fathom::models {
namespace {

nlohmann::json read_reference(const std::string& name) {
  std::ifstream in(testing::fixture("models/" + name + ".reference.json"));
  return nlohmann::json::parse(in);
}

std::vector<float> normalized(std::vector<float> v) {
  double n = 0;
  for (float x : v) n += static_cast<double>(x) * x;
  n = std::max(std::sqrt(n), 1e-12);
  for (float& x : v) x = static_cast<float>(x / n);
  return v;
}

class EncoderParity : public ::testing::TestWithParam<std::string> {};

TEST_P(EncoderParity, MatchesReferenceAndBatchingIsExact) {
  const std::string name = GetParam();
  const nlohmann::json ref = read_reference(name);
  auto loaded = Registry::global().load(testing::fixture("models/" + name), LoadOptions{});
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  Model& model = **loaded;
  EXPECT_EQ(model.architecture(), ref.at("architecture").get<std::string>());
  EXPECT_EQ(model.dtype(), DType::kF32);
  Embedder* e = model.as_embedder();
  ASSERT_NE(e, nullptr);
  const bool normalize = ref.at("normalize").get<bool>();
  EXPECT_EQ(e->normalizes_by_default(), normalize);
  EXPECT_EQ(e->max_input_tokens(), ref.at("max_seq_length").get<int>());
  const auto& cases = ref.at("cases");
  ASSERT_FALSE(cases.empty());
  const int dim = e->embedding_dim();
  ASSERT_EQ(dim, static_cast<int>(cases[0].at("embedding").size()));

  std::vector<std::vector<int32_t>> all;
  bool saw_truncated = false;
  for (const auto& c : cases) {
    all.push_back(c.at("token_ids").get<std::vector<int32_t>>());
    saw_truncated = saw_truncated || c.at("truncated").get<bool>();
  }
  EXPECT_TRUE(saw_truncated) << "the reference should include a case at the length limit";
  auto batched = e->embed(all);
  ASSERT_TRUE(batched.ok()) << batched.error().message;
  ASSERT_EQ(batched->size(), all.size() * static_cast<std::size_t>(dim));

  // The same bounds as the BERT family: the references are f32 from the (upcast) checkpoint weights.
  constexpr double kMinCosine = 0.99999, kMaxAbs = 1e-5;
  double worst_cos = 1.0, worst_abs = 0.0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    std::vector<float> got(batched->begin() + static_cast<long>(i) * dim, batched->begin() + static_cast<long>(i + 1) * dim);
    if (normalize) got = normalized(got);
    const auto want = cases[i].at("embedding").get<std::vector<float>>();
    double dot = 0, ng = 0, nw = 0, max_abs = 0;
    for (int k = 0; k < dim; ++k) {
      dot += static_cast<double>(got[k]) * want[k];
      ng += static_cast<double>(got[k]) * got[k];
      nw += static_cast<double>(want[k]) * want[k];
      max_abs = std::max(max_abs, std::abs(static_cast<double>(got[k]) - want[k]));
    }
    const double cosine = dot / std::sqrt(ng * nw);
    worst_cos = std::min(worst_cos, cosine);
    worst_abs = std::max(worst_abs, max_abs);
    EXPECT_GE(cosine, kMinCosine) << name << " case " << i;
    EXPECT_LE(max_abs, kMaxAbs) << name << " case " << i;

    auto single = e->embed({all[i]});
    ASSERT_TRUE(single.ok()) << single.error().message;
    for (int k = 0; k < dim; ++k)
      ASSERT_NEAR((*single)[k], (*batched)[i * dim + k], 1e-6) << name << " case " << i << " dim " << k;
  }
  std::printf("[ parity ] %s: min cosine %.9f, max |diff| %.3g over %zu cases\n", name.c_str(), worst_cos, worst_abs,
              cases.size());
}

TEST_P(EncoderParity, ModelTokenizerGivesTheReferenceIds) {
  const std::string name = GetParam();
  const nlohmann::json ref = read_reference(name);
  auto loaded = Registry::global().load(testing::fixture("models/" + name), LoadOptions{});
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  Embedder* e = (*loaded)->as_embedder();
  ASSERT_NE(e, nullptr);
  formats::EncodeOptions options;
  options.max_length = e->max_input_tokens();
  for (const auto& c : ref.at("cases")) {
    auto ids = e->tokenizer().encode(c.at("text").get<std::string>(), options);
    ASSERT_TRUE(ids.ok()) << ids.error().message;
    EXPECT_EQ(*ids, c.at("token_ids").get<std::vector<int32_t>>()) << name << ": " << c.at("text").get<std::string>();
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, EncoderParity, ::testing::Values("mpnet-mean-norm", "mpnet-f16-cls", "nomic-mean-norm",
                                                                         "nomic-f16-cls-bias", "gte-ntk-cls-norm", "gte-bf16-mean",
                                                                         "modernbert-mean", "modernbert-bf16-cls-norm",
                                                                         "modernbert-f16-d64"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

// MPNet's relative-position buckets equal the reference's for every distance of the fixtures.
TEST(MpnetModel, RelativeBucketsMatchTheReference) {
  const nlohmann::json ref = read_reference("mpnet-mean-norm");
  const auto distances = ref.at("relative_distances").get<std::vector<int>>();
  const auto buckets = ref.at("relative_buckets").get<std::vector<int>>();
  ASSERT_EQ(distances.size(), buckets.size());
  for (std::size_t i = 0; i < distances.size(); ++i)
    EXPECT_EQ(mpnet::relative_bucket(distances[i], 32), buckets[i]) << "distance " << distances[i];
  // Far distances saturate in the last bucket of each direction.
  EXPECT_EQ(mpnet::relative_bucket(-100000, 32), 15);
  EXPECT_EQ(mpnet::relative_bucket(100000, 32), 31);
}

TEST(MpnetModel, BadInputsAreErrors) {
  auto m = Registry::global().load(testing::fixture("models/mpnet-mean-norm"), LoadOptions{});
  ASSERT_TRUE(m.ok()) << m.error().message;
  Embedder* e = (*m)->as_embedder();
  EXPECT_FALSE(e->embed({{0, 2}, {}}).ok());
  EXPECT_FALSE(e->embed({{0, 999999, 2}}).ok());
  auto too_long = e->embed({std::vector<int32_t>(static_cast<std::size_t>(e->max_input_tokens()) + 1, 5)});
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error().code, ErrorCode::kTooLarge);
  EXPECT_TRUE(e->embed({{0, 5, 2}}).ok());
}

}  // namespace
}  // namespace fathom::models

namespace fathom::models {
namespace {

// A copy of fixture `name` with config.json edited by `edit`, in a fresh temporary directory.
std::filesystem::path edited_fixture(const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
  const auto src = testing::fixture("models/" + name);
  const auto dst = std::filesystem::temp_directory_path() /
                   ("fathom-encoder-" + name + "-" + std::to_string(std::hash<std::string>{}(
                                                        ::testing::UnitTest::GetInstance()->current_test_info()->name())));
  std::filesystem::remove_all(dst);
  std::filesystem::copy(src, dst, std::filesystem::copy_options::recursive);
  nlohmann::json config;
  {
    std::ifstream in(dst / "config.json");
    config = nlohmann::json::parse(in);
  }
  edit(config);
  std::ofstream(dst / "config.json") << config.dump(2);
  return dst;
}

Error load_error(const std::filesystem::path& dir) {
  auto m = Registry::global().load(dir, LoadOptions{});
  EXPECT_FALSE(m.ok()) << dir;
  return m.ok() ? Error{} : m.error();
}

TEST(EncoderConfigs, UnsupportedOptionsAreNamedLoadErrors) {
  auto nomic = load_error(edited_fixture("nomic-mean-norm", [](nlohmann::json& c) { c["prenorm"] = true; }));
  EXPECT_EQ(nomic.code, ErrorCode::kUnsupported);
  EXPECT_NE(nomic.message.find("prenorm"), std::string::npos) << nomic.message;
  auto scaled = load_error(edited_fixture("nomic-mean-norm", [](nlohmann::json& c) { c["rotary_scaling_factor"] = 2.0; }));
  EXPECT_NE(scaled.message.find("rotary_scaling_factor"), std::string::npos) << scaled.message;
  auto gte = load_error(edited_fixture("gte-ntk-cls-norm", [](nlohmann::json& c) {
    c["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
  }));
  EXPECT_EQ(gte.code, ErrorCode::kUnsupported);
  EXPECT_NE(gte.message.find("rope_scaling"), std::string::npos) << gte.message;
  auto layers = load_error(edited_fixture("modernbert-mean", [](nlohmann::json& c) {
    c["layer_types"] = {"full_attention"};
  }));
  EXPECT_NE(layers.message.find("layer_types"), std::string::npos) << layers.message;
  // A checkpoint with more layers than config.json declares.
  auto fewer = load_error(edited_fixture("mpnet-mean-norm", [](nlohmann::json& c) { c["num_hidden_layers"] = 1; }));
  EXPECT_NE(fewer.message.find("num_hidden_layers"), std::string::npos) << fewer.message;
}

TEST(EncoderConfigs, ModernBertClassifierOptionsAreNamedLoadErrors) {
  auto pooling = load_error(edited_fixture("modernbert-rerank-mean", [](nlohmann::json& c) {
    c["classifier_pooling"] = "max";
  }));
  EXPECT_EQ(pooling.code, ErrorCode::kUnsupported);
  EXPECT_NE(pooling.message.find("config.json"), std::string::npos) << pooling.message;
  EXPECT_NE(pooling.message.find("classifier_pooling 'max'"), std::string::npos) << pooling.message;
  auto act = load_error(edited_fixture("modernbert-rerank-mean", [](nlohmann::json& c) {
    c["classifier_activation"] = "relu";
  }));
  EXPECT_EQ(act.code, ErrorCode::kUnsupported);
  EXPECT_NE(act.message.find("config.json"), std::string::npos) << act.message;
  EXPECT_NE(act.message.find("classifier_activation 'relu'"), std::string::npos) << act.message;
  // config.json and checkpoint disagree: a dense bias that the checkpoint does not hold, a wrong label count.
  auto bias = load_error(edited_fixture("modernbert-rerank-mean", [](nlohmann::json& c) { c["classifier_bias"] = true; }));
  EXPECT_EQ(bias.code, ErrorCode::kLoadFailed);
  EXPECT_NE(bias.message.find("head.dense.bias"), std::string::npos) << bias.message;
  auto labels = load_error(edited_fixture("modernbert-nli-bf16-cls", [](nlohmann::json& c) { c["num_labels"] = 2; }));
  EXPECT_EQ(labels.code, ErrorCode::kLoadFailed);
  EXPECT_NE(labels.message.find("classifier.weight"), std::string::npos) << labels.message;
}

TEST(EncoderConfigs, TaskHeadsOfTheFamiliesAreRefused) {
  for (const char* head : {"ModernBertForTokenClassification", "ModernBertForQuestionAnswering",
                           "NewForSequenceClassification", "MPNetForSequenceClassification",
                           "NomicBertForSequenceClassification"}) {
    auto dir = edited_fixture("modernbert-mean", [&](nlohmann::json& c) { c["architectures"] = {head}; });
    auto m = Registry::global().match(dir);
    ASSERT_FALSE(m.ok()) << head;
    EXPECT_EQ(m.error().code, ErrorCode::kUnsupported);
    EXPECT_NE(m.error().message.find("task head"), std::string::npos) << m.error().message;
    // A refused ModernBERT head points at the classifier fathom serves.
    EXPECT_EQ(m.error().message.find("ModernBertForSequenceClassification") != std::string::npos,
              std::string(head).rfind("ModernBert", 0) == 0)
        << m.error().message;
  }
  // The ModernBERT sequence-classification head is served, by its own architecture (never the embedder).
  auto classifier = edited_fixture("modernbert-mean", [](nlohmann::json& c) {
    c["architectures"] = {"ModernBertForSequenceClassification"};
  });
  auto served = Registry::global().match(classifier);
  ASSERT_TRUE(served.ok()) << served.error().message;
  EXPECT_EQ(served->architecture->info.name, "modernbert-classifier");
  // The model_type alone (no architectures) still finds the encoder.
  auto bare = edited_fixture("gte-bf16-mean", [](nlohmann::json& c) { c.erase("architectures"); });
  auto m = Registry::global().match(bare);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->architecture->info.name, "gte");
}

}  // namespace
}  // namespace fathom::models
