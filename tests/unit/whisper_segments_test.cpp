// Segment splitting, seeking over long audio, batched scheduling of many jobs, compression ratio.
#include <gtest/gtest.h>

#include <string>

#include "models/whisper/segments.h"
#include "models/whisper/transcription.h"
#include "unit/whisper_fake.h"

namespace fathom::models::whisper {
namespace {

using namespace testing;

constexpr int kTb = 50364;

TEST(WhisperSegments, PairsEndingUnfinishedSeekToLastTimestamp) {
  // transformers' timestamps_en case of the tiny fixture: three segments, the last pair closes at 29.92 s,
  // so the next window starts at frame 2992.
  std::vector<int32_t> t{50369, 8392, 51171, 51171, 41909, 51646, 51646, 47223, 51860, 51860, 999, 998};
  auto s = split_window(t, kTb, 0, 3000);
  ASSERT_EQ(s.segments.size(), 3u);
  EXPECT_DOUBLE_EQ(s.segments[0].start, 0.10);
  EXPECT_NEAR(s.segments[0].end, 16.14, 1e-9);
  EXPECT_EQ(s.segments[0].tokens, (std::vector<int32_t>{50369, 8392, 51171}));
  EXPECT_EQ(s.segments[2].tokens, (std::vector<int32_t>{51646, 47223, 51860, 51860}));
  EXPECT_NEAR(s.segments[2].end, 29.92, 1e-9);
  EXPECT_EQ(s.advance_frames, 2992);
}

TEST(WhisperSegments, SingleTimestampEndingConsumesWindow) {
  std::vector<int32_t> t{kTb, 100, kTb + 50, kTb + 50, 200, kTb + 100};
  auto s = split_window(t, kTb, 6000, 2500);
  ASSERT_EQ(s.segments.size(), 2u);
  EXPECT_NEAR(s.segments[0].start, 60.0, 1e-9);
  EXPECT_NEAR(s.segments[0].end, 61.0, 1e-9);
  EXPECT_NEAR(s.segments[1].start, 61.0, 1e-9);
  EXPECT_NEAR(s.segments[1].end, 62.0, 1e-9);
  EXPECT_EQ(s.advance_frames, 2500);
}

TEST(WhisperSegments, NoPairIsOneSegment) {
  std::vector<int32_t> t{100, 200};
  auto s = split_window(t, kTb, 3000, 3000);
  ASSERT_EQ(s.segments.size(), 1u);
  EXPECT_NEAR(s.segments[0].start, 30.0, 1e-9);
  EXPECT_NEAR(s.segments[0].end, 60.0, 1e-9);
  EXPECT_EQ(s.advance_frames, 3000);
  std::vector<int32_t> u{kTb + 10, 100};
  auto v = split_window(u, kTb, 0, 3000);
  EXPECT_NEAR(v.segments[0].end, 0.20, 1e-9) << "ends at its only (non-zero) timestamp";
}

TEST(WhisperSegments, CompressionRatioLikeWhisper) {
  std::string rep;
  for (int i = 0; i < 50; ++i) rep += "the same words again ";
  EXPECT_GT(compression_ratio(rep), 2.4);
  EXPECT_LT(compression_ratio("And so my fellow Americans"), 1.5);
  EXPECT_DOUBLE_EQ(compression_ratio(""), 1.0);
}

// A decoder of text ids: "<id>" per token.
std::string fake_text(const std::vector<int32_t>& ids) {
  std::string s;
  for (auto t : ids) s += "<" + std::to_string(t) + ">";
  return s;
}

JobSetup setup(bool timestamps, std::string lang = "en") {
  JobSetup s;
  s.window.language = lang;
  s.window.timestamps = timestamps;
  s.window.max_new_tokens = 20;
  return s;
}

TEST(WhisperJobs, LongAudioSeeksByTimestampsWithExactOffsets) {
  // 70 s of audio (7000 frames). Every window says: <|0.00|> 3 <|0.20|><|0.20|> 4 <|0.30|>... cut off, so
  // each window is followed by one starting 0.2 s (20 frames) later than its last complete pair.
  LogitsFn fn = [](const std::vector<int32_t>& h, int) {
    const std::vector<int32_t> script{kTs, 3, kTs + 10, kTs + 10, 4, kTs + 15, kTs + 15, 5};
    std::size_t pos = h.size() - 3;
    return logits_with({{pos < script.size() ? script[pos] : 6, 9.0f}});
  };
  FakeBackend b(fn);
  std::vector<float> mel(2 * 7000);
  for (int f = 0; f < 7000; ++f) mel[f] = static_cast<float>(f);  // row 0 holds the frame index
  TranscriptionJob job(fake_text, fake_generation_config(), kVocab, 64, 2, mel, 7000, 70.0, setup(true));
  for (int i = 0; i < 10000 && !job.done(); ++i) step_jobs(b, {&job});
  ASSERT_TRUE(job.done());
  auto r = job.result();
  ASSERT_TRUE(r.ok());
  // Each window advances by its last closed pair, <|0.30|> = 30 frames.
  ASSERT_GE(b.window_first_values.size(), 3u);
  EXPECT_FLOAT_EQ(b.window_first_values[0], 0.0f);
  EXPECT_FLOAT_EQ(b.window_first_values[1], 30.0f);
  EXPECT_FLOAT_EQ(b.window_first_values[2], 60.0f);
  const auto& segs = r->segments;
  ASSERT_GE(segs.size(), 4u);
  EXPECT_NEAR(segs[0].start, 0.0, 1e-9);
  EXPECT_NEAR(segs[0].end, 0.20, 1e-9);
  EXPECT_NEAR(segs[2].start, 0.30, 1e-9);
  EXPECT_NEAR(segs[2].end, 0.50, 1e-9);
  EXPECT_EQ(segs[2].seek, 30);
  for (std::size_t i = 0; i < segs.size(); ++i) EXPECT_EQ(segs[i].id, static_cast<int>(i));
  EXPECT_EQ(segs[0].text, "<3>");
}

TEST(WhisperJobs, ShortAudioWithoutTimestampsIsOneSegment) {
  FakeBackend b([](const std::vector<int32_t>& h, int) {
    std::size_t pos = h.size() - 4;
    return logits_with({{pos < 3 ? 7 : kEos, 9.0f}});
  });
  std::vector<float> mel(2 * 3000, 1.0f);
  TranscriptionJob job(fake_text, fake_generation_config(), kVocab, 64, 2, mel, 3000, 11.0, setup(false));
  for (int i = 0; i < 100 && !job.done(); ++i) step_jobs(b, {&job});
  auto r = job.result();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->tokens, (std::vector<int32_t>{7, 7, 7}));
  EXPECT_EQ(r->text, "<7><7><7>");
  ASSERT_EQ(r->segments.size(), 1u);
  EXPECT_NEAR(r->segments[0].end, 11.0, 1e-9);
  EXPECT_EQ(b.encode_calls, 1);
  EXPECT_EQ(job.text_so_far(), "<7><7><7>");
}

TEST(WhisperJobs, JobsShareEncoderAndDecoderBatchesAndJoinMidway) {
  // Job A: 6 tokens; job B joins after 3 steps; both are decoded in the same calls while overlapping.
  LogitsFn fn = [](const std::vector<int32_t>& h, int) {
    std::size_t pos = h.size() - 4;
    return logits_with({{pos < 6 ? 8 : kEos, 9.0f}});
  };
  FakeBackend b(fn);
  std::vector<float> mel(2 * 3000, 0.0f);
  TranscriptionJob a(fake_text, fake_generation_config(), kVocab, 64, 2, mel, 3000, 30.0, setup(false));
  TranscriptionJob c(fake_text, fake_generation_config(), kVocab, 64, 2, mel, 3000, 30.0, setup(false));
  TranscriptionJob d(fake_text, fake_generation_config(), kVocab, 64, 2, mel, 3000, 30.0, setup(false, "fr"));
  for (int i = 0; i < 3; ++i) step_jobs(b, {&a});
  EXPECT_FALSE(a.text_so_far().empty()) << "partial text streams while decoding";
  for (int i = 0; i < 100 && !(a.done() && c.done() && d.done()); ++i) step_jobs(b, {&a, &c, &d});
  ASSERT_TRUE(a.done() && c.done() && d.done());
  EXPECT_EQ(b.encode_batch_sizes, (std::vector<int>{1, 2})) << "the two joining jobs are encoded together";
  int max_rows = 0;
  for (int n : b.decode_batch_sizes) max_rows = std::max(max_rows, n);
  EXPECT_EQ(max_rows, 3);
  EXPECT_EQ(a.result()->tokens.size(), 6u);
  EXPECT_EQ(d.result()->language, "fr");
  EXPECT_EQ(b.free_slots(), 16) << "all slots returned";
}

TEST(WhisperJobs, WaitsForFreeSlots) {
  FakeBackend b([](const std::vector<int32_t>& h, int) { return logits_with({{h.size() > 6 ? kEos : 8, 9.0f}}); }, 1);
  std::vector<float> mel(2 * 3000, 0.0f);
  TranscriptionJob a(fake_text, fake_generation_config(), kVocab, 64, 2, mel, 3000, 30.0, setup(false));
  TranscriptionJob c(fake_text, fake_generation_config(), kVocab, 64, 2, mel, 3000, 30.0, setup(false));
  for (int i = 0; i < 100 && !(a.done() && c.done()); ++i) step_jobs(b, {&a, &c});
  EXPECT_TRUE(a.result().ok());
  EXPECT_TRUE(c.result().ok());
  EXPECT_EQ(b.encode_batch_sizes, (std::vector<int>{1, 1}));
}

}  // namespace
}  // namespace fathom::models::whisper
