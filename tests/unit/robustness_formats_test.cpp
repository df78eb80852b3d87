// Regression tests for inputs the fuzzers (fuzz/) found mishandled: each case is a minimised fuzz input or
// the smallest file showing the same fault. See docs/reliability.md.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "formats/audio/audio.h"
#include "formats/json_file.h"
#include "formats/mel/log_mel.h"

namespace fathom::formats {
namespace {

void put_le(std::vector<uint8_t>& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// A RIFF/WAVE file of IEEE float32 samples (interleaved).
std::vector<uint8_t> float_wav(int channels, uint32_t rate, const std::vector<float>& samples) {
  std::vector<uint8_t> data;
  for (float f : samples) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    put_le(data, bits, 4);
  }
  std::vector<uint8_t> out = {'R', 'I', 'F', 'F'};
  put_le(out, 4 + 8 + 16 + 8 + data.size(), 4);
  for (char c : std::string("WAVEfmt ")) out.push_back(static_cast<uint8_t>(c));
  put_le(out, 16, 4);
  put_le(out, 3, 2);  // IEEE float
  put_le(out, channels, 2);
  put_le(out, rate, 4);
  put_le(out, rate * channels * 4, 4);
  put_le(out, channels * 4, 2);
  put_le(out, 32, 2);
  for (char c : std::string("data")) out.push_back(static_cast<uint8_t>(c));
  put_le(out, data.size(), 4);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// fuzz_model_config: `"model_max_length": 1e30` (as transformers writes "no limit") made json_int convert an
// out-of-range double to int64_t, which is undefined behaviour.
TEST(RobustnessJson, HugeFloatIsNotAnIntegerAndHasNoUndefinedConversion) {
  nlohmann::json j = {{"a", 1e30}, {"b", -1e30}, {"c", 9.5e18}, {"d", 3.0}, {"e", 2.5}};
  EXPECT_FALSE(json_int(j, "a", "config.json").ok());
  EXPECT_FALSE(json_int(j, "b", "config.json").ok());
  EXPECT_FALSE(json_int(j, "c", "config.json").ok());
  auto d = json_int(j, "d", "config.json");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->value(), 3);
  auto e = json_int(j, "e", "config.json");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("config.json"), std::string::npos);
  EXPECT_FALSE(json_positive_int(j, "a", "config.json").ok());
}

// fuzz_audio_wav: a float WAV of one frame at 44.1 kHz resampled to zero samples, and decode_wav returned
// success with an empty signal (the contract says "no samples decoded" is kInvalidArgument).
TEST(RobustnessAudio, WavTooShortToResampleIsAnError) {
  auto bytes = float_wav(1, 44100, {0.5f});
  auto r = decode_wav(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("44100"), std::string::npos) << r.error().message;
}

// fuzz_audio_wav: huge finite float samples (-2.2e38) overflowed in the resampler to inf/NaN, which poisons
// the whole log-mel spectrogram. Both decoders now keep samples finite and within +-65536.
TEST(RobustnessAudio, HugeFloatSamplesDecodeToFiniteBoundedAudio) {
  std::vector<float> samples(4410);
  for (std::size_t i = 0; i < samples.size(); ++i) samples[i] = (i % 7 == 0) ? -2.2e38f : (i % 5 == 0 ? 3.0e38f : 0.25f);
  auto bytes = float_wav(2, 44100, samples);
  auto check = [](const Result<AudioBuffer>& r, const char* what) {
    ASSERT_TRUE(r.ok()) << what << ": " << r.error().message;
    ASSERT_FALSE(r->samples.empty()) << what;
    for (float s : r->samples) {
      ASSERT_TRUE(std::isfinite(s)) << what;
      ASSERT_LE(std::abs(s), 65536.0f) << what;
    }
    LogMelOptions options;
    options.pad_or_trim_samples = 0;
    auto mel = whisper_log_mel(r->samples, options);
    ASSERT_TRUE(mel.ok()) << what;
    for (float v : mel->data) ASSERT_TRUE(std::isfinite(v)) << what;
  };
  check(decode_wav(bytes), "decode_wav");
  check(decode_audio(bytes), "decode_audio");
}

}  // namespace
}  // namespace fathom::formats
