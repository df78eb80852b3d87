// Temperature fallback (models/whisper/fallback.h): openai-whisper's decision rule on hand-made statistics,
// then on the tiny Whisper fixture: thresholds that never trigger keep transformers' greedy tokens at the
// first temperature; a compression-ratio threshold every window exceeds makes each window decode again until
// the last temperature (which the segments report); a no-speech rule every window meets skips the audio.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "models/whisper/fallback.h"
#include "models/whisper/whisper_model.h"
#include "support/whisper_inputs.h"

namespace fathom::models::whisper {
namespace {

FallbackOptions defaults() {
  FallbackOptions o;
  o.temperatures = {0.0f, 0.2f, 0.4f};
  o.compression_ratio_threshold = 2.4;
  o.logprob_threshold = -1.0;
  o.no_speech_threshold = 0.6;
  return o;
}

TEST(WhisperFallbackRule, AsOpenAiWhisperDecides) {
  const FallbackOptions o = defaults();
  EXPECT_FALSE(needs_fallback(o, 1.5, -0.3, 0.1));  // fine
  EXPECT_TRUE(needs_fallback(o, 2.5, -0.3, 0.1));   // repetitive
  EXPECT_TRUE(needs_fallback(o, 1.5, -1.2, 0.1));   // unlikely
  EXPECT_FALSE(needs_fallback(o, 1.5, -1.2, 0.7));  // unlikely but silence: kept
  EXPECT_TRUE(needs_fallback(o, 2.5, -0.3, 0.7));   // repetitive and likely speech by log-prob: again
  FallbackOptions off = o;
  off.compression_ratio_threshold.reset();
  off.logprob_threshold.reset();
  EXPECT_FALSE(needs_fallback(off, 9.0, -9.0, 0.0));

  EXPECT_TRUE(window_is_silent(o, -1.2, 0.7));
  EXPECT_FALSE(window_is_silent(o, -0.5, 0.7));  // a confident transcript is kept
  EXPECT_FALSE(window_is_silent(o, -1.2, 0.5));
  FallbackOptions single = o;
  single.temperatures = {0.0f};
  EXPECT_FALSE(window_is_silent(single, -1.2, 0.9));  // fallback off: nothing skipped
}

class WhisperFallback : public ::testing::Test {
 protected:
  void SetUp() override {
    l_ = fathom::testing::load_whisper_fixture("whisper-tiny-random-f32", LoadOptions{});
    ASSERT_TRUE(l_.model);
  }
  Result<Transcription> run(const SpeechOptions& o) {
    return l_.model->speech().transcribe(l_.mel.data, 3000, l_.duration, o);
  }
  SpeechOptions base() const {
    SpeechOptions o;
    o.language = "en";
    o.max_new_tokens = l_.reference["max_new_tokens"].get<int>();
    return o;
  }
  fathom::testing::LoadedWhisper l_;
};

TEST_F(WhisperFallback, ThresholdsThatNeverTriggerKeepTheGreedyTokens) {
  SpeechOptions o = base();
  o.temperatures = {0.0f, 0.5f, 1.0f};
  o.compression_ratio_threshold = std::numeric_limits<double>::infinity();
  o.logprob_threshold = -std::numeric_limits<double>::infinity();
  o.no_speech_threshold = 1.0;
  auto r = run(o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->tokens, l_.reference["generate"]["transcribe_en"]["tokens"].get<std::vector<int32_t>>());
  ASSERT_FALSE(r->segments.empty());
  for (const auto& s : r->segments) EXPECT_EQ(s.temperature, 0.0f);
}

TEST_F(WhisperFallback, AFailingWindowIsDecodedAgainUpToTheLastTemperature) {
  SpeechOptions o = base();
  o.temperatures = {0.0f, 0.5f, 1.0f};
  o.compression_ratio_threshold = -1.0;  // every text "compresses too well"
  o.logprob_threshold.reset();
  o.no_speech_threshold.reset();
  o.seed = 7;
  auto r = run(o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_FALSE(r->segments.empty());
  for (const auto& s : r->segments) EXPECT_EQ(s.temperature, 1.0f);  // the last attempt is kept
  // Seeded: the same request gives the same transcript.
  auto again = run(o);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->tokens, r->tokens);
}

TEST_F(WhisperFallback, AWindowThatLooksSilentIsSkipped) {
  SpeechOptions o = base();
  o.temperatures = {0.0f, 0.2f};
  o.compression_ratio_threshold.reset();
  o.no_speech_threshold = -1.0;  // every window's no_speech_prob is above it
  o.logprob_threshold = std::numeric_limits<double>::infinity();  // and no transcript is confident
  auto r = run(o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->segments.empty());
  EXPECT_TRUE(r->text.empty()) << r->text;
}

TEST_F(WhisperFallback, ScheduleMustIncreaseAndExcludesBeams) {
  SpeechOptions o = base();
  o.temperatures = {0.4f, 0.2f};
  auto r = run(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().param, "temperature");
  o.temperatures = {0.0f, 0.2f};
  o.beams = 2;
  r = run(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("beam"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace fathom::models::whisper
