// Window decoding (forced prompt, language detection, greedy, sampling, beam search) on a scripted backend.
#include <gtest/gtest.h>

#include <cmath>

#include "models/whisper/decoding.h"
#include "unit/whisper_fake.h"

namespace fathom::models::whisper {
namespace {

using namespace testing;

// Runs one window to completion on `backend`.
WindowResult run(FakeBackend& backend, WindowOptions o, int max_positions = 64) {
  auto slots = backend.acquire_slots(std::max(1, o.beams)).value();
  auto enc = backend.encode({std::span<const float>(std::vector<float>(6000).data(), 6000)}, {slots});
  EXPECT_TRUE(enc.ok());
  WindowDecoder d(fake_generation_config(), kVocab, max_positions, o, slots);
  for (int i = 0; i < 200 && !d.done(); ++i) {
    auto logits = backend.decode(d.rows());
    EXPECT_TRUE(logits.ok());
    EXPECT_TRUE(d.advance(logits.value()).ok());
  }
  EXPECT_TRUE(d.done());
  backend.release_slots(slots);
  return d.result();
}

// Emits `script` one token per step after the prompt, then EOS.
LogitsFn scripted(std::vector<int32_t> script, std::size_t prompt_len) {
  return [script, prompt_len](const std::vector<int32_t>& h, int) {
    std::size_t pos = h.size() - prompt_len;
    int next = pos < script.size() ? script[pos] : kEos;
    return logits_with({{next, 5.0f}});
  };
}

TEST(WhisperDecoding, ForcedPromptWithLanguageAndTask) {
  FakeBackend b(scripted({3, 4, 5}, 4));
  WindowOptions o;
  o.language = "fr";
  o.translate = true;
  auto r = run(b, o);
  EXPECT_EQ(r.prompt, (std::vector<int32_t>{kSot, kFr, kTranslate, kNoTs}));
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{3, 4, 5}));
  EXPECT_TRUE(r.ended_with_eos);
  EXPECT_EQ(r.language, "fr");
  // First call feeds <|startoftranscript|> alone (no_speech_prob), then the rest of the prompt, then one
  // token per step; every step after the first feeds only new tokens.
  ASSERT_GE(b.histories.size(), 3u);
  EXPECT_EQ(b.histories[0], (std::vector<int32_t>{kSot}));
  EXPECT_EQ(b.histories[1], r.prompt);
  EXPECT_EQ(b.fed_tokens, 4 + 3);  // sot, 3 prompt tokens, then 3 generated tokens (EOS never fed)
}

TEST(WhisperDecoding, TimestampsDropNoTimestampsToken) {
  FakeBackend b(scripted({kTs, 3, kTs + 2}, 3));
  WindowOptions o;
  o.language = "en";
  o.timestamps = true;
  auto r = run(b, o);
  EXPECT_EQ(r.prompt, (std::vector<int32_t>{kSot, kEn, kTranscribe}));
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{kTs, 3, kTs + 2}));
}

TEST(WhisperDecoding, DetectsLanguageFromStartOfTranscript) {
  // At <|startoftranscript|> French (2.0) beats English (1.0); a text token scores higher but is ignored.
  FakeBackend b([](const std::vector<int32_t>& h, int) {
    if (h.size() == 1) return logits_with({{kEn, 1.0f}, {kFr, 2.0f}, {3, 9.0f}, {kNoSpeech, 1.0f}});
    return logits_with({{kEos, 5.0f}});
  });
  WindowOptions o;
  auto r = run(b, o);
  EXPECT_EQ(r.language, "fr");
  EXPECT_NEAR(r.language_prob, std::exp(2.0) / (std::exp(1.0) + std::exp(2.0)), 1e-6);
  ASSERT_EQ(r.language_logprobs.size(), 2u);
  EXPECT_EQ(r.language_logprobs[0].first, kFr);
  EXPECT_EQ(r.prompt, (std::vector<int32_t>{kSot, kFr, kTranscribe, kNoTs}));
  // no_speech_prob: softmax over the raw logits at <|startoftranscript|>.
  double z = 0;
  for (float v : logits_with({{kEn, 1.0f}, {kFr, 2.0f}, {3, 9.0f}, {kNoSpeech, 1.0f}})) z += std::exp(v);
  EXPECT_NEAR(r.no_speech_prob, std::exp(1.0) / z, 1e-6);
  // Begin-suppression kept EOS from ending the window at once: the first token is the best non-EOS one.
  EXPECT_FALSE(r.tokens.empty());
}

TEST(WhisperDecoding, PreviousTextPromptAndDetectionOnSotAlone) {
  FakeBackend b(scripted({6}, 8));
  WindowOptions o;
  o.previous = {1, 2, 3};
  auto r = run(b, o);
  EXPECT_EQ(r.prompt, (std::vector<int32_t>{kPrev, 1, 2, 3, kSot, kEn, kTranscribe, kNoTs}));
  EXPECT_EQ(b.histories[0], (std::vector<int32_t>{kSot})) << "language detected from <|startoftranscript|> alone";
  EXPECT_EQ(b.histories[1], (std::vector<int32_t>{kPrev, 1, 2, 3, kSot}));
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{6}));
}

TEST(WhisperDecoding, MaxNewTokensAndPositionLimit) {
  FakeBackend b([](const std::vector<int32_t>&, int) { return logits_with({{7, 5.0f}}); });
  WindowOptions o;
  o.language = "en";
  o.max_new_tokens = 5;
  auto r = run(b, o);
  EXPECT_EQ(r.tokens.size(), 5u);
  EXPECT_FALSE(r.ended_with_eos);
  FakeBackend c([](const std::vector<int32_t>&, int) { return logits_with({{7, 5.0f}}); }, 4, 10);
  o.max_new_tokens = 100;
  auto s = run(c, o, 10);
  EXPECT_EQ(s.tokens.size(), 6u);  // 10 positions - 4 prompt tokens
}

TEST(WhisperDecoding, AvgLogprobCountsEos) {
  // Two tokens then EOS, each with probability p after the rules: avg = 3 log p / 3.
  FakeBackend b(scripted({3, 4}, 4));
  WindowOptions o;
  o.language = "en";
  auto r = run(b, o);
  ASSERT_EQ(r.tokens.size(), 2u);
  EXPECT_NEAR(r.avg_logprob, r.sum_logprob / 3.0, 1e-12);
  EXPECT_LT(r.sum_logprob, 0.0);
}

TEST(WhisperDecoding, SamplingIsSeededAndTopPNarrowsToArgmax) {
  // Two text tokens of similar probability then EOS.
  LogitsFn fn = [](const std::vector<int32_t>& h, int) {
    if (h.size() >= 4 + 12) return logits_with({{kEos, 9.0f}});
    return logits_with({{3, 1.0f}, {4, 1.2f}}, -5.0f);
  };
  WindowOptions o;
  o.language = "en";
  o.temperature = 1.0f;
  o.seed = 42;
  FakeBackend b1(fn), b2(fn), b3(fn);
  auto r1 = run(b1, o), r2 = run(b2, o);
  EXPECT_EQ(r1.tokens, r2.tokens);
  bool saw3 = false, saw4 = false;
  for (auto t : r1.tokens) (t == 3 ? saw3 : saw4) = true;
  EXPECT_TRUE(saw3 && saw4) << "both likely tokens are drawn";
  o.top_p = 0.3f;  // only the single most likely token survives
  auto r3 = run(b3, o);
  for (auto t : r3.tokens) EXPECT_EQ(t, 4);
}

TEST(WhisperDecoding, BeamSearchFindsBetterSequenceThanGreedy) {
  // Step 1: token 3 (p~0.6) or 4 (p~0.4). After 3 the model is unsure (flat); after 4 it is sure of 5 then EOS.
  LogitsFn fn = [](const std::vector<int32_t>& h, int) {
    if (h.size() < 4) return logits_with({});
    std::vector<int32_t> g(h.begin() + 4, h.end());
    if (g.empty()) return logits_with({{3, 2.4f}, {4, 2.0f}}, -20.0f);
    if (g[0] == 3) {
      if (g.size() >= 3) return logits_with({{kEos, 10.0f}}, -20.0f);
      return logits_with({}, 0.0f);  // flat over everything
    }
    if (g.size() == 1) return logits_with({{5, 10.0f}}, -20.0f);
    return logits_with({{kEos, 10.0f}}, -20.0f);
  };
  WindowOptions o;
  o.language = "en";
  FakeBackend g(fn);
  auto greedy = run(g, o);
  EXPECT_EQ(greedy.tokens.front(), 3);
  o.beams = 3;
  FakeBackend b(fn);
  auto beam = run(b, o);
  EXPECT_EQ(beam.tokens, (std::vector<int32_t>{4, 5}));
  EXPECT_TRUE(beam.ended_with_eos);
  EXPECT_GT(beam.avg_logprob, greedy.avg_logprob);
  // Beams ran as one batched row per beam after the first step.
  int max_rows = 0;
  for (int n : b.decode_batch_sizes) max_rows = std::max(max_rows, n);
  EXPECT_EQ(max_rows, 3);
}

TEST(WhisperDecoding, RejectsWrongLogitCount) {
  FakeBackend b(scripted({}, 4));
  WindowOptions o;
  o.language = "en";
  WindowDecoder d(fake_generation_config(), kVocab, 64, o, {0});
  std::vector<float> wrong(kVocab + 1);
  EXPECT_FALSE(d.advance(wrong).ok());
}

}  // namespace
}  // namespace fathom::models::whisper
