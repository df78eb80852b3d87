// Decoder-LLM embedding models (Qwen3-Embedding layout) against the references of
// scripts/fixtures/make_decoder_embedders.py: the model's own tokenizer appends <|endoftext|> and gives the
// reference ids, the last-token hidden state and the normalised embedding match sentence-transformers
// (f32 on CPU; the bf16 checkpoint upcast as the reference upcasts it), queries with the declared "query"
// prompt, batching and cache-sized passes equal to one text at a time, and the refusal of a causal LM
// without sentence-transformers pooling.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "formats/tokenizer/tokenizer.h"
#include "models/registry.h"
#include "support/paths.h"

namespace fathom::models {
namespace {

nlohmann::json read_reference(const std::string& name) {
  std::ifstream in(testing::fixture("models/" + name + ".reference.json"));
  return nlohmann::json::parse(in);
}

std::vector<float> normalized(std::span<const float> v) {
  double n = 0;
  for (float x : v) n += static_cast<double>(x) * x;
  n = std::max(std::sqrt(n), 1e-12);
  std::vector<float> out(v.begin(), v.end());
  for (float& x : out) x = static_cast<float>(x / n);
  return out;
}

double cosine(std::span<const float> a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
  return ab / std::sqrt(aa * bb);
}

double max_abs_diff(std::span<const float> a, const std::vector<float>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double e = std::abs(static_cast<double>(a[i]) - b[i]);
    if (!(e <= worst)) worst = e;  // NaN counts as worst
  }
  return worst;
}

std::unique_ptr<Model> load(const std::string& name, int max_batch_tokens = 16384) {
  LoadOptions o;
  o.max_batch_tokens = max_batch_tokens;
  auto m = Registry::global().load(testing::fixture("models/" + name), o);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  return m.ok() ? std::move(m).value() : nullptr;
}

class DecoderEmbedderParity : public ::testing::TestWithParam<std::string> {};

TEST_P(DecoderEmbedderParity, TokensHiddenStatesAndEmbeddingsMatch) {
  const nlohmann::json ref = read_reference(GetParam());
  auto model = load(GetParam());
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->architecture(), ref.at("architecture").get<std::string>());
  EXPECT_EQ(model->info().name, "qwen3-embedding");
  EXPECT_EQ(model->dtype(), DType::kF32);
  Embedder* e = model->as_embedder();
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->normalizes_by_default());
  EXPECT_EQ(e->max_input_tokens(), ref.at("max_seq_length").get<int>());
  const auto& cases = ref.at("cases");
  ASSERT_GE(cases.size(), 4u);
  ASSERT_EQ(e->embedding_dim(), static_cast<int>(cases[0].at("embedding").size()));
  const std::size_t dim = static_cast<std::size_t>(e->embedding_dim());
  for (const auto& c : cases) {
    const std::string text = c.at("text").get<std::string>();
    auto ids = e->tokenizer().encode(text);
    ASSERT_TRUE(ids.ok()) << ids.error().message;
    const auto want_ids = c.at("token_ids").get<std::vector<int32_t>>();
    EXPECT_EQ(ids.value(), want_ids) << text;
    EXPECT_EQ(want_ids.back(), ref.at("eos_token_id").get<int32_t>()) << text;
    auto got = e->embed({want_ids});
    ASSERT_TRUE(got.ok()) << got.error().message;
    ASSERT_EQ(got.value().size(), dim);
    // Unnormalised: the final-normed hidden state of the last position.
    const auto hidden = c.at("last_hidden").get<std::vector<float>>();
    double scale = 0;
    for (float x : hidden) scale = std::max(scale, static_cast<double>(std::abs(x)));
    EXPECT_LT(max_abs_diff(got.value(), hidden), 1e-5 * std::max(1.0, scale)) << text;
    const auto emb = normalized(got.value());
    const auto want = c.at("embedding").get<std::vector<float>>();
    EXPECT_GE(cosine(emb, want), 0.99999) << text;
    EXPECT_LT(max_abs_diff(emb, want), 1e-5) << text;
  }
}

TEST_P(DecoderEmbedderParity, QueryPromptIsDeclaredAndMatches) {
  const nlohmann::json ref = read_reference(GetParam());
  auto model = load(GetParam());
  ASSERT_NE(model, nullptr);
  Embedder* e = model->as_embedder();
  const auto prompts = e->prompts();
  const auto& queries = ref.at("queries");
  ASSERT_FALSE(queries.empty());
  const std::string prompt = queries[0].at("prompt").get<std::string>();
  bool found = false;
  for (const auto& [name, text] : prompts) found = found || (name == "query" && text == prompt);
  EXPECT_TRUE(found) << "the query prompt of config_sentence_transformers.json is not declared";
  EXPECT_EQ(e->default_prompt_name(), "");
  for (const auto& q : queries) {
    auto ids = e->tokenizer().encode(prompt + q.at("query").get<std::string>());
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(ids.value(), q.at("token_ids").get<std::vector<int32_t>>());
    auto got = e->embed({ids.value()});
    ASSERT_TRUE(got.ok()) << got.error().message;
    const auto emb = normalized(got.value());
    EXPECT_LT(max_abs_diff(emb, q.at("embedding").get<std::vector<float>>()), 1e-5) << q.at("query");
  }
}

TEST_P(DecoderEmbedderParity, BatchesAndCacheSizedPassesEqualSingleTexts) {
  const nlohmann::json ref = read_reference(GetParam());
  std::vector<std::vector<int32_t>> all;
  for (const auto& c : ref.at("cases")) all.push_back(c.at("token_ids").get<std::vector<int32_t>>());
  all.push_back(all[1]);  // the same text twice in one batch
  auto model = load(GetParam());
  ASSERT_NE(model, nullptr);
  Embedder* e = model->as_embedder();
  const std::size_t dim = static_cast<std::size_t>(e->embedding_dim());
  std::vector<float> single;
  for (const auto& ids : all) {
    auto one = e->embed({ids});
    ASSERT_TRUE(one.ok()) << one.error().message;
    single.insert(single.end(), one.value().begin(), one.value().end());
  }
  auto batched = e->embed(all);
  ASSERT_TRUE(batched.ok()) << batched.error().message;
  ASSERT_EQ(batched.value().size(), all.size() * dim);
  EXPECT_LT(max_abs_diff(batched.value(), single), 1e-5);
  // A token budget smaller than the batch: several passes, one after the other, the same results.
  auto small = load(GetParam(), 40);
  ASSERT_NE(small, nullptr);
  auto passes = small->as_embedder()->embed(all);
  ASSERT_TRUE(passes.ok()) << passes.error().message;
  EXPECT_LT(max_abs_diff(passes.value(), single), 1e-5);
  // The cache is empty again after every call: the same batch again gives the same embeddings.
  auto again = e->embed(all);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value(), batched.value());
}

TEST_P(DecoderEmbedderParity, BadInputsAreErrorsNotCrashes) {
  auto model = load(GetParam());
  ASSERT_NE(model, nullptr);
  Embedder* e = model->as_embedder();
  auto empty = e->embed({{}});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, ErrorCode::kInvalidArgument);
  auto outside = e->embed({{1, 2, 1 << 20}});
  ASSERT_FALSE(outside.ok());
  EXPECT_EQ(outside.error().code, ErrorCode::kInvalidArgument);
  auto too_long = e->embed({std::vector<int32_t>(static_cast<std::size_t>(e->max_input_tokens()) + 1, 5)});
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error().code, ErrorCode::kTooLarge);
  auto fine = e->embed({{5, 6, 7}});
  EXPECT_TRUE(fine.ok());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DecoderEmbedderParity, ::testing::Values("qwen3-embed-f32", "qwen3-embed-bf16", "qwen3-embed-f16-d64"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

// A Qwen3ForCausalLM directory without sentence-transformers pooling is a chat model: refused at load and by
// inspect, naming modules.json, never served as an embedder.
TEST(DecoderEmbedder, CausalLmWithoutPoolingIsRefusedWithTheReason) {
  const auto dir = testing::fixture("models/funasr-nano-random-a/Qwen3-tiny");
  auto m = Registry::global().match(dir);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m.value().architecture->info.name, "qwen3-embedding");
  auto loaded = Registry::global().load(dir, LoadOptions{});
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(loaded.error().message.find("modules.json"), std::string::npos) << loaded.error().message;
  EXPECT_NE(loaded.error().message.find("lasttoken"), std::string::npos) << loaded.error().message;
  ASSERT_TRUE(m.value().architecture->inspect);
  auto rows = m.value().architecture->inspect(dir, m.value().config);
  ASSERT_FALSE(rows.ok());
  EXPECT_NE(rows.error().message.find("modules.json"), std::string::npos);
}

TEST(DecoderEmbedder, InspectShowsDecoderPoolingAndPrompts) {
  const auto dir = testing::fixture("models/qwen3-embed-bf16");
  auto m = Registry::global().match(dir);
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto rows = m.value().architecture->inspect(dir, m.value().config);
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  std::map<std::string, std::string> by_label(rows.value().begin(), rows.value().end());
  EXPECT_NE(by_label["decoder"].find("3 layers"), std::string::npos) << by_label["decoder"];
  EXPECT_NE(by_label["decoder"].find("3/1 heads of 24"), std::string::npos) << by_label["decoder"];
  EXPECT_EQ(by_label.count("pooling"), 0u);  // the generic inspect output shows pooling
  EXPECT_NE(by_label["prompts"].find("query = \"Instruct:"), std::string::npos) << by_label["prompts"];
}

}  // namespace
}  // namespace fathom::models
