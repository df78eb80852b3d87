// Whisper config.json / generation_config.json parsing on the committed fixtures and on bad input.
#include <gtest/gtest.h>

#include <fstream>

#include "models/whisper/config.h"
#include "models/whisper/languages.h"
#include "support/paths.h"

namespace fathom::models::whisper {
namespace {

nlohmann::json read(const std::filesystem::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

TEST(WhisperConfig, ParsesTinyFixture) {
  auto dir = fathom::testing::fixture("models/whisper-tiny-random-f32");
  auto c = parse_whisper_config(read(dir / "config.json"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->d_model, 16);
  EXPECT_EQ(c->encoder_layers, 2);
  EXPECT_EQ(c->decoder_attention_heads, 4);
  EXPECT_EQ(c->decoder_ffn_dim, 64);
  EXPECT_EQ(c->num_mel_bins, 80);
  EXPECT_EQ(c->max_source_positions, 1500);
  EXPECT_EQ(c->max_target_positions, 448);
  EXPECT_EQ(c->vocab_size, 51865);
  EXPECT_EQ(c->activation_function, "gelu");
  EXPECT_FALSE(c->scale_embedding);
  auto g = load_generation_config(dir, c.value());
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_TRUE(g->is_multilingual);
  EXPECT_EQ(g->lang_to_id.size(), 99u);
  EXPECT_EQ(*g->language_token("en"), 50259);
  EXPECT_EQ(g->task_to_id.at("translate"), 50358);
  EXPECT_EQ(g->no_timestamps_token_id, 50363);
  EXPECT_EQ(g->timestamp_begin(), 50364);
  EXPECT_EQ(*g->prev_sot_token_id, 50361);
  EXPECT_EQ(*g->max_initial_timestamp_index, 50);
  EXPECT_EQ(g->begin_suppress_tokens, (std::vector<int>{220, 50257}));
  EXPECT_EQ(g->suppress_tokens.front(), 1);
  ASSERT_EQ(g->forced_decoder_ids.size(), 2u);
  EXPECT_FALSE(g->forced_decoder_ids[0].second.has_value());
  EXPECT_EQ(g->max_length, 448);
}

TEST(WhisperConfig, V3FixtureHasCantonese) {
  auto dir = fathom::testing::fixture("models/whisper-v3-random-f16");
  auto c = parse_whisper_config(read(dir / "config.json"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->num_mel_bins, 128);
  EXPECT_EQ(c->vocab_size, 51866);
  auto g = load_generation_config(dir, c.value());
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(*g->language_token("yue"), 50358);
  EXPECT_EQ(g->no_timestamps_token_id, 50364);
  EXPECT_EQ(g->language_code(50358), "yue");
  EXPECT_EQ(normalize_language(g.value(), "Cantonese").value(), "yue");
}

TEST(WhisperConfig, ErrorsNameTheKey) {
  nlohmann::json j = {{"d_model", 16}};
  auto c = parse_whisper_config(j, "x/config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("x/config.json"), std::string::npos);
  EXPECT_NE(c.error().message.find("encoder_layers"), std::string::npos);
  nlohmann::json g = {{"is_multilingual", true}, {"suppress_tokens", "nope"}};
  auto r = parse_generation_config(g);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("suppress_tokens"), std::string::npos);
}

TEST(WhisperConfig, NormalizeLanguage) {
  GenerationConfig g;
  g.is_multilingual = true;
  g.lang_to_id = {{"en", 1}, {"fr", 2}};
  EXPECT_EQ(normalize_language(g, "EN").value(), "en");
  EXPECT_EQ(normalize_language(g, "french").value(), "fr");
  EXPECT_EQ(normalize_language(g, "<|fr|>").value(), "fr");
  auto bad = normalize_language(g, "xx");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().param, "language");
  EXPECT_EQ(language_name("en"), "english");
  EXPECT_EQ(language_code_of_name("German"), "de");
}

}  // namespace
}  // namespace fathom::models::whisper
