// Progress of long transcriptions: SpeechJob::seconds_done() of a Whisper job advances window by window over
// audio longer than 30 s and ends at the duration (what `fathom transcribe`'s progress bar shows).
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "formats/audio/audio.h"
#include "models/registry.h"
#include "support/paths.h"

namespace fathom::models {
namespace {

TEST(WhisperProgress, SecondsDoneAdvancesPerWindowAndEndsAtTheDuration) {
  auto model = Registry::global().load(fathom::testing::fixture("models/whisper-tiny-random-f32"), LoadOptions{});
  ASSERT_TRUE(model.ok()) << model.error().message;
  SpeechToText* stt = (*model)->as_speech_to_text();
  ASSERT_NE(stt, nullptr);
  std::ifstream f(fathom::testing::shared_dir() / "assets/whisper/jfk.wav", std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), {});
  auto audio = formats::decode_audio(bytes);
  ASSERT_TRUE(audio.ok()) << audio.error().message;
  // Four copies of the 11 s clip: 44 s, two windows or more.
  std::vector<float> samples;
  for (int i = 0; i < 4; ++i) samples.insert(samples.end(), audio->samples.begin(), audio->samples.end());
  const double duration = static_cast<double>(samples.size()) / 16000.0;
  SpeechOptions o;
  o.language = "en";
  o.max_new_tokens = 8;
  auto job = stt->start(std::move(samples), o);
  ASSERT_TRUE(job.ok()) << job.error().message;
  EXPECT_EQ(job.value()->seconds_done(), 0.0);
  std::vector<SpeechJob*> jobs{job.value().get()};
  std::vector<double> seen{0.0};
  for (int guard = 0; !jobs[0]->done() && guard < 100000; ++guard) {
    stt->step(jobs);
    const double s = jobs[0]->seconds_done();
    if (s != seen.back()) seen.push_back(s);
  }
  ASSERT_TRUE(jobs[0]->done());
  ASSERT_TRUE(jobs[0]->result().ok()) << jobs[0]->result().error().message;
  ASSERT_GE(seen.size(), 3u) << "expected progress before the last window";
  for (std::size_t i = 1; i < seen.size(); ++i) EXPECT_GT(seen[i], seen[i - 1]);
  EXPECT_LE(seen[1], 30.0);  // the first window advances at most 30 s
  EXPECT_DOUBLE_EQ(seen.back(), duration);
}

}  // namespace
}  // namespace fathom::models
