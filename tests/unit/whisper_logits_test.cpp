// Whisper logits rules against hand-made logits (transformers' processors, one rule per test).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "models/whisper/logits_rules.h"
#include "unit/whisper_fake.h"

namespace fathom::models::whisper {
namespace {

using namespace testing;

bool is_inf(float v) { return std::isinf(v) && v < 0; }

LogitsRules rules(bool timestamps) { return make_logits_rules(fake_generation_config(), kVocab, timestamps); }

std::vector<float> flat() { return std::vector<float>(kVocab, 1.0f); }

TEST(WhisperLogits, BeginSuppressOnlyAtFirstPosition) {
  auto l = flat();
  apply_logits_rules(rules(false), {}, l);
  EXPECT_TRUE(is_inf(l[0]));
  EXPECT_TRUE(is_inf(l[kEos]));
  EXPECT_FALSE(is_inf(l[1]));
  auto m = flat();
  std::vector<int32_t> gen{3};
  apply_logits_rules(rules(false), gen, m);
  EXPECT_FALSE(is_inf(m[0]));
  EXPECT_FALSE(is_inf(m[kEos]));
}

TEST(WhisperLogits, SuppressTokensAlways) {
  for (std::vector<int32_t> gen : {std::vector<int32_t>{}, std::vector<int32_t>{1, 2}}) {
    auto l = flat();
    apply_logits_rules(rules(false), gen, l);
    for (int t : {kSot, kTranslate, kTranscribe, 16, kPrev, kNoSpeech}) EXPECT_TRUE(is_inf(l[t])) << t;
    EXPECT_FALSE(is_inf(l[5]));
    EXPECT_FALSE(is_inf(l[kNoTs])) << "without timestamps <|notimestamps|> is not touched";
  }
}

TEST(WhisperLogits, FirstTimestampForcedAndBounded) {
  auto l = flat();
  apply_logits_rules(rules(true), {}, l);
  for (int t = 0; t < kTs; ++t) EXPECT_TRUE(is_inf(l[t])) << t;  // text, eos, specials
  for (int t = kTs; t <= kTs + 5; ++t) EXPECT_FALSE(is_inf(l[t])) << t;
  for (int t = kTs + 6; t < kVocab; ++t) EXPECT_TRUE(is_inf(l[t])) << t;  // max_initial_timestamp_index 5
}

TEST(WhisperLogits, OpenTimestampNeedsClosingOrEos) {
  // [<|0.04|> text <|0.10|>]: the pair is open, so no normal text; eos and timestamps >= 0.10 remain.
  std::vector<int32_t> gen{kTs + 2, 4, kTs + 5};
  auto l = flat();
  l[kEos] = 5.0f;  // likelier than all timestamps together, so they are not forced
  apply_logits_rules(rules(true), gen, l);
  for (int t = 0; t < kEos; ++t) EXPECT_TRUE(is_inf(l[t])) << t;
  EXPECT_FALSE(is_inf(l[kEos]));
  for (int t = kTs; t < kTs + 5; ++t) EXPECT_TRUE(is_inf(l[t])) << t;
  EXPECT_FALSE(is_inf(l[kTs + 5])) << "closing timestamp may equal the opening one";
  EXPECT_FALSE(is_inf(l[kTs + 9]));
  EXPECT_TRUE(is_inf(l[kNoTs]));
}

TEST(WhisperLogits, ClosedPairForbidsTimestamps) {
  std::vector<int32_t> gen{kTs + 2, 4, kTs + 5, kTs + 5};
  auto l = flat();
  apply_logits_rules(rules(true), gen, l);
  for (int t = kTs; t < kVocab; ++t) EXPECT_TRUE(is_inf(l[t])) << t;
  // Text then stays allowed; the sum of timestamp probabilities is 0 so nothing is forced.
  EXPECT_FALSE(is_inf(l[3]));
}

TEST(WhisperLogits, TimestampsNeverDecrease) {
  // After [<|0.12|> text]: the next timestamp must be > 0.12 (strictly, the last one is not repeated).
  std::vector<int32_t> gen{kTs + 6, 4};
  auto l = flat();
  apply_logits_rules(rules(true), gen, l);
  for (int t = kTs; t <= kTs + 6; ++t) EXPECT_TRUE(is_inf(l[t])) << t;
  EXPECT_FALSE(is_inf(l[kTs + 7]));
}

TEST(WhisperLogits, TimestampForcedWhenTheirMassBeatsEveryTextToken) {
  std::vector<int32_t> gen{kTs + 1, 4};
  // Every timestamp at 0, best text token at 2.0: the 18 allowed timestamps have mass 18 > e^2 = 7.4.
  auto l = logits_with({{5, 2.0f}}, -10.0f);
  for (int t = kTs; t < kVocab; ++t) l[t] = 0.0f;
  apply_logits_rules(rules(true), gen, l);
  for (int t = 0; t < kTs; ++t) EXPECT_TRUE(is_inf(l[t])) << t;
  // With the text token at 3.0 (e^3 = 20 > 18 allowed timestamps) nothing is forced.
  auto m = logits_with({{5, 3.0f}}, -10.0f);
  for (int t = kTs; t < kVocab; ++t) m[t] = 0.0f;
  apply_logits_rules(rules(true), gen, m);
  EXPECT_FALSE(is_inf(m[5]));
}

TEST(WhisperLogits, LogSoftmaxKeepsInfinities) {
  std::vector<float> l{0.0f, -INFINITY, std::log(3.0f)};
  auto lp = log_softmax(l);
  EXPECT_NEAR(std::exp(lp[0]), 0.25, 1e-6);
  EXPECT_NEAR(std::exp(lp[2]), 0.75, 1e-6);
  EXPECT_TRUE(std::isinf(lp[1]));
}

}  // namespace
}  // namespace fathom::models::whisper

namespace fathom::models::whisper {
namespace {

// row_stats (vectorised max, first argmax and log-sum-exp) against the double log_softmax reference, on
// rows of every length around the vector widths, with ties, -inf entries and a large dynamic range.
TEST(WhisperLogits, RowStatsMatchLogSoftmax) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-30.0f, 12.0f);
  for (int n : {1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 1023, 1024, 1025, 51866}) {
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = u(rng);
    for (int i = 0; i < n; i += 5) v[static_cast<std::size_t>(i)] = -std::numeric_limits<float>::infinity();
    const float top = 20.0f;
    const std::size_t a = static_cast<std::size_t>(n) / 2, b = static_cast<std::size_t>(n) - 1;
    v[b] = top;
    v[a] = top;  // a tie: the first index wins
    const RowStats s = row_stats(v);
    auto lp = log_softmax(v);
    EXPECT_EQ(s.argmax, static_cast<int>(std::min(a, b))) << n;
    EXPECT_EQ(s.max, top);
    const double ref = static_cast<double>(v[static_cast<std::size_t>(s.argmax)]) - lp[static_cast<std::size_t>(s.argmax)];
    EXPECT_NEAR(s.logsumexp, ref, 1e-6 * std::max(1.0, std::abs(ref))) << n;
    EXPECT_NEAR(log_sum_exp(v), ref, 1e-6 * std::max(1.0, std::abs(ref))) << n;
  }
  std::vector<float> all_inf(100, -std::numeric_limits<float>::infinity());
  const RowStats s = row_stats(all_inf);
  EXPECT_EQ(s.argmax, 0);
  EXPECT_TRUE(std::isinf(s.logsumexp) && s.logsumexp < 0);
}

}  // namespace
}  // namespace fathom::models::whisper
