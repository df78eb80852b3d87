// Decoder-LLM parity against transformers' Qwen3ForCausalLM (tests/fixtures/models/funasr-nano-random-{a,b},
// made by scripts/fixtures/make_audiollm.py): for every reference case the prompt is the chat-template
// rendering with the adaptor output spliced at <|AUDIO|>, fed as input embeddings; greedy tokens must equal
// the reference token for token (the reference's smallest top-2 margin is printed; the tightest is ~1e-3).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "formats/tokenizer/tokenizer.h"
#include "models/decoder/generator.h"
#include "support/decoder_fixture.h"
#include "support/paths.h"

namespace fathom::models::decoder {
namespace {

using fathom::testing::DecoderFixture;
using fathom::testing::fixture_prompt;
using fathom::testing::load_decoder_fixture;

const char* const kCases[] = {"jfk_default", "jfk_language_en", "jfk_prompt", "tones_default"};

std::vector<int32_t> generate_alone(DecoderLm& lm, std::vector<PromptPart> prompt, int max_tokens) {
  Generator gen(lm);
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.max_completion_tokens = max_tokens;
  auto id = gen.submit(std::move(r));
  EXPECT_TRUE(id.ok()) << id.error().message;
  std::vector<int32_t> tokens;
  while (!gen.idle()) {
    auto events = gen.step();
    EXPECT_TRUE(events.ok()) << events.error().message;
    if (!events.ok()) break;
    for (const auto& e : events.value()) {
      EXPECT_FALSE(e.error) << e.error->message;
      if (e.token >= 0) tokens.push_back(e.token);
    }
  }
  return tokens;
}

class DecoderParity : public ::testing::TestWithParam<std::string> {};

TEST_P(DecoderParity, ConfigAndWeightsLoad) {
  DecoderFixture f = load_decoder_fixture(GetParam());
  ASSERT_TRUE(f.lm);
  const DecoderConfig& c = f.lm->config();
  EXPECT_EQ(c.model_type, "qwen3");
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.rope.theta, 1000000.0);
  const auto eos = f.reference["generate"]["eos_token_ids"].get<std::vector<int>>();
  EXPECT_EQ(c.eos_token_ids, eos);
  EXPECT_EQ(f.lm->has_lm_head(), true);
  EXPECT_GT(f.lm->memory_bytes(), f.lm->weight_bytes());  // weights + KV pool
}

TEST_P(DecoderParity, TokenizerEncodesTheRenderedPrompt) {
  DecoderFixture f = load_decoder_fixture(GetParam());
  auto tok = formats::Tokenizer::load(fathom::testing::fixture("models/" + GetParam() + "/Qwen3-tiny/tokenizer.json"));
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  const auto& g = f.reference["generate"];
  EXPECT_EQ(tok.value()->token_to_id("<|AUDIO|>"), g["audio_token_id"].get<int32_t>());
  for (const char* key : kCases) {
    const auto& c = g["cases"][key];
    formats::EncodeOptions o;
    o.add_special_tokens = false;
    auto ids = tok.value()->encode(c["prompt_text"].get<std::string>(), o);
    ASSERT_TRUE(ids.ok()) << ids.error().message;
    EXPECT_EQ(ids.value(), c["prompt_ids"].get<std::vector<int32_t>>()) << key;
  }
}

TEST_P(DecoderParity, GreedyTokensMatchTransformers) {
  DecoderFixture f = load_decoder_fixture(GetParam());
  ASSERT_TRUE(f.lm);
  for (const char* key : kCases) {
    const auto& c = f.reference["generate"]["cases"][key];
    const auto expected = c["greedy_tokens"].get<std::vector<int32_t>>();
    const auto tokens = generate_alone(*f.lm, fixture_prompt(f, key), c["max_new_tokens"].get<int>());
    EXPECT_EQ(tokens, expected) << GetParam() << " " << key << " (reference min top-2 margin "
                                << c["min_margin"].get<double>() << ")";
    EXPECT_EQ(f.lm->cache().live_sequences(), 0);
    EXPECT_EQ(f.lm->cache().free_blocks(), f.lm->cache().num_blocks());
  }
}

TEST_P(DecoderParity, FirstStepTopFiveMatchTransformers) {
  DecoderFixture f = load_decoder_fixture(GetParam());
  ASSERT_TRUE(f.lm);
  for (const char* key : kCases) {
    const auto& c = f.reference["generate"]["cases"][key];
    const auto prompt = fixture_prompt(f, key);
    const int seq = f.lm->add_sequence();
    SequenceInput in{seq, {}};
    for (const auto& p : prompt) in.spans.push_back(p.ids.empty() ? InputSpan::embeds(p.embeddings) : InputSpan::tokens(p.ids));
    auto out = f.lm->forward({in});
    ASSERT_TRUE(out.ok()) << out.error().message;
    const auto logits = out.value().logits;
    std::vector<int32_t> order(logits.size());
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + 5, order.end(),
                      [&](int32_t a, int32_t b) { return logits[static_cast<std::size_t>(a)] > logits[static_cast<std::size_t>(b)]; });
    order.resize(5);
    EXPECT_EQ(order, c["first_logits_top5"].get<std::vector<int32_t>>()) << key;
    EXPECT_EQ(f.lm->cache().length(seq), static_cast<int64_t>(c["prompt_ids"].size()) - 1 + c["audio_positions"].get<int64_t>());
    f.lm->release_sequence(seq);
  }
}

// The whole prompt as one embeddings span (token embeddings from the model's table, adaptor rows between)
// gives the same tokens as id spans.
TEST_P(DecoderParity, PrecomputedEmbeddingsEqualTokenIds) {
  DecoderFixture f = load_decoder_fixture(GetParam());
  ASSERT_TRUE(f.lm);
  const char* key = "tones_default";
  const auto parts = fixture_prompt(f, key);
  PromptPart all;
  for (const auto& p : parts) {
    if (p.ids.empty()) {
      all.embeddings.insert(all.embeddings.end(), p.embeddings.begin(), p.embeddings.end());
    } else {
      auto e = f.lm->token_embeddings(p.ids);
      ASSERT_TRUE(e.ok()) << e.error().message;
      all.embeddings.insert(all.embeddings.end(), e.value().begin(), e.value().end());
    }
  }
  const auto& c = f.reference["generate"]["cases"][key];
  EXPECT_EQ(generate_alone(*f.lm, {all}, 12), c["greedy_tokens"].get<std::vector<int32_t>>());
}

TEST_P(DecoderParity, SmallBlocksGiveTheSameTokens) {
  DecoderFixture f = load_decoder_fixture(GetParam(), 1 << 20, 3);
  ASSERT_TRUE(f.lm);
  const auto& c = f.reference["generate"]["cases"]["jfk_prompt"];
  EXPECT_EQ(generate_alone(*f.lm, fixture_prompt(f, "jfk_prompt"), 12), c["greedy_tokens"].get<std::vector<int32_t>>());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DecoderParity, ::testing::Values("funasr-nano-random-a", "funasr-nano-random-b"));

}  // namespace
}  // namespace fathom::models::decoder
