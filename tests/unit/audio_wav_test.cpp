// The built-in RIFF/WAVE reader and resampler (the decoder of builds without FFmpeg), and the header
// checks shared with the FFmpeg path.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "formats/audio/audio.h"
#include "support/paths.h"

namespace fathom::formats {
namespace {

void put16(std::vector<uint8_t>& b, uint16_t v) { b.push_back(v & 0xff); b.push_back(v >> 8); }
void put32(std::vector<uint8_t>& b, uint32_t v) { for (int i = 0; i < 4; ++i) b.push_back((v >> (8 * i)) & 0xff); }

struct WavSpec {
  uint16_t format = 1;  // 1 PCM, 3 float
  uint16_t channels = 1;
  uint32_t rate = 16000;
  uint16_t bits = 16;
  bool extensible = false;
};

// A WAV of `frames` (interleaved, one value per channel per frame, in [-1, 1]).
std::vector<uint8_t> make_wav(const WavSpec& s, const std::vector<double>& values, int64_t declared_data = -1) {
  std::vector<uint8_t> data;
  for (double v : values) {
    switch (s.format == 3 ? -s.bits : s.bits) {
      case 8: data.push_back(static_cast<uint8_t>(std::lround(std::clamp(v * 128.0 + 128.0, 0.0, 255.0)))); break;
      case 16: put16(data, static_cast<uint16_t>(static_cast<int16_t>(std::lround(std::clamp(v * 32768.0, -32768.0, 32767.0))))); break;
      case 24: {
        int32_t x = static_cast<int32_t>(std::lround(std::clamp(v * 8388608.0, -8388608.0, 8388607.0)));
        for (int i = 0; i < 3; ++i) data.push_back((static_cast<uint32_t>(x) >> (8 * i)) & 0xff);
        break;
      }
      case 32: put32(data, static_cast<uint32_t>(static_cast<int32_t>(std::llround(std::clamp(v * 2147483648.0, -2147483648.0, 2147483647.0))))); break;
      case -32: { float f = static_cast<float>(v); uint32_t u; std::memcpy(&u, &f, 4); put32(data, u); break; }
      case -64: { uint64_t u; std::memcpy(&u, &v, 8); put32(data, u & 0xffffffffu); put32(data, u >> 32); break; }
    }
  }
  std::vector<uint8_t> b;
  b.insert(b.end(), {'R', 'I', 'F', 'F'});
  put32(b, 0);  // patched below
  b.insert(b.end(), {'W', 'A', 'V', 'E', 'x', 'y', 'z', 'w'});
  put32(b, 3);  // an odd-sized chunk to skip (padded to 4)
  b.insert(b.end(), {'a', 'b', 'c', 0});
  b.insert(b.end(), {'f', 'm', 't', ' '});
  put32(b, s.extensible ? 40 : 16);
  put16(b, s.extensible ? 0xFFFE : s.format);
  put16(b, s.channels);
  put32(b, s.rate);
  put32(b, s.rate * s.channels * (s.bits / 8));
  put16(b, static_cast<uint16_t>(s.channels * (s.bits / 8)));
  put16(b, s.bits);
  if (s.extensible) {
    put16(b, 22);
    put16(b, s.bits);
    put32(b, 0);
    put16(b, s.format);  // sub-format GUID starts with the format tag
    b.insert(b.end(), {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71});
  }
  b.insert(b.end(), {'d', 'a', 't', 'a'});
  put32(b, declared_data >= 0 ? static_cast<uint32_t>(declared_data) : static_cast<uint32_t>(data.size()));
  b.insert(b.end(), data.begin(), data.end());
  uint32_t riff = static_cast<uint32_t>(b.size() - 8);
  std::memcpy(&b[4], &riff, 4);
  return b;
}

std::vector<double> sine(double freq, int rate, int frames, int channels, double amp = 0.5) {
  std::vector<double> v;
  for (int i = 0; i < frames; ++i)
    for (int c = 0; c < channels; ++c) v.push_back(amp * std::sin(2 * M_PI * freq * i / rate) * (c == 0 ? 1.0 : 0.5));
  return v;
}

TEST(AudioWav, EveryPcmEncodingAt16k) {
  const auto values = sine(440.0, 16000, 1600, 1);
  struct Case { uint16_t format, bits; bool extensible; double tol; };
  for (Case c : {Case{1, 8, false, 1.0 / 128}, Case{1, 16, false, 1.0 / 32768}, Case{1, 24, false, 1e-6},
                 Case{1, 32, false, 1e-6}, Case{3, 32, false, 1e-7}, Case{3, 64, false, 1e-7},
                 Case{1, 16, true, 1.0 / 32768}, Case{3, 32, true, 1e-7}}) {
    SCOPED_TRACE("format " + std::to_string(c.format) + " bits " + std::to_string(c.bits) +
                 (c.extensible ? " extensible" : ""));
    auto bytes = make_wav({c.format, 1, 16000, c.bits, c.extensible}, values);
    for (auto decode : {&decode_wav, &decode_audio}) {
      auto a = decode(bytes, {});
      ASSERT_TRUE(a.ok()) << a.error().message;
      ASSERT_EQ(a->samples.size(), values.size());
      double max_err = 0;
      for (std::size_t i = 0; i < values.size(); ++i) max_err = std::max(max_err, std::abs(a->samples[i] - values[i]));
      EXPECT_LE(max_err, c.tol);
    }
  }
}

TEST(AudioWav, StereoIsAveragedAndResampled) {
  // 1 kHz at 44.1 kHz stereo (right channel at half amplitude) -> mean 0.75 * 0.5 * sin at 16 kHz.
  const int frames = 44100;
  auto bytes = make_wav({1, 2, 44100, 16, false}, sine(1000.0, 44100, frames, 2));
  auto a = decode_wav(bytes);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->source_channels, 2);
  EXPECT_EQ(a->source_sample_rate, 44100);
  ASSERT_EQ(a->samples.size(), 16000u);
  double max_err = 0;
  for (int i = 100; i < 15900; ++i)  // away from the edges, where the filter sees the zero padding
    max_err = std::max(max_err, std::abs(a->samples[i] - 0.375 * std::sin(2 * M_PI * 1000.0 * i / 16000)));
  EXPECT_LT(max_err, 1e-3);
}

TEST(AudioWav, ResamplerRemovesContentAboveNyquist) {
  // 10 kHz tone at 48 kHz cannot exist at 16 kHz: the anti-aliasing filter must remove it, not fold it to 6 kHz.
  std::vector<float> tone(48000);
  for (int i = 0; i < 48000; ++i) tone[i] = static_cast<float>(0.5 * std::sin(2 * M_PI * 10000.0 * i / 48000));
  auto out = resample_mono(tone, 48000, 16000);
  ASSERT_EQ(out.size(), 16000u);
  double rms = 0;
  for (int i = 200; i < 15800; ++i) rms += out[i] * out[i];
  rms = std::sqrt(rms / 15600);
  EXPECT_LT(rms, 1e-3);
  // Upsampling 8 kHz -> 16 kHz keeps a 1 kHz tone.
  std::vector<float> low(8000);
  for (int i = 0; i < 8000; ++i) low[i] = static_cast<float>(std::sin(2 * M_PI * 1000.0 * i / 8000));
  auto up = resample_mono(low, 8000, 16000);
  ASSERT_EQ(up.size(), 16000u);
  double max_err = 0;
  for (int i = 200; i < 15800; ++i) max_err = std::max(max_err, std::abs(up[i] - std::sin(2 * M_PI * 1000.0 * i / 16000)));
  EXPECT_LT(max_err, 2e-3);
  // An odd ratio whose phase table would be too large takes the direct path and still works.
  auto odd = resample_mono(low, 7919, 16000);
  EXPECT_EQ(odd.size(), static_cast<std::size_t>(std::lround(8000.0 * 16000 / 7919)));
}

TEST(AudioWav, LyingAndBrokenHeaders) {
  const auto values = sine(440.0, 16000, 160, 1);
  struct Case { const char* what; std::vector<uint8_t> bytes; ErrorCode code; const char* message; };
  auto truncated = make_wav({}, values, 1000000);
  auto zero_channels = make_wav({1, 0, 16000, 16, false}, {});
  auto many_channels = make_wav({1, 1000, 16000, 16, false}, values);
  auto zero_rate = make_wav({1, 1, 0, 16, false}, values);
  auto huge_rate = make_wav({1, 1, 100000000, 16, false}, values);
  auto odd_bits = make_wav({1, 1, 16000, 12, false}, values);
  auto adpcm = make_wav({2, 1, 16000, 16, false}, values);
  auto no_data = make_wav({}, values);
  no_data.resize(no_data.size() - values.size() * 2 - 8);
  auto empty_data = make_wav({}, {});
  std::vector<Case> cases = {
      {"data size beyond the end", truncated, ErrorCode::kInvalidArgument, "declares 1000000 bytes"},
      {"no 'data' chunk", no_data, ErrorCode::kInvalidArgument, "no 'data' chunk"},
      {"no samples", empty_data, ErrorCode::kInvalidArgument, "no samples"},
      {"1000 channels", many_channels, ErrorCode::kInvalidArgument, "1000 channels"},
      {"0 Hz", zero_rate, ErrorCode::kInvalidArgument, "sample rate 0 Hz"},
      {"100 MHz", huge_rate, ErrorCode::kInvalidArgument, "100000000 Hz"},
      {"12-bit", odd_bits, ErrorCode::kUnsupported, "12 bits"},
      {"ADPCM", adpcm, ErrorCode::kUnsupported, "sample format 2"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    auto r = decode_wav(c.bytes);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, c.code) << r.error().message;
    EXPECT_NE(r.error().message.find(c.message), std::string::npos) << r.error().message;
    // The FFmpeg path refuses them too (ADPCM and 12-bit aside, which FFmpeg may decode or refuse).
    auto f = decode_audio(c.bytes);
    if (c.code == ErrorCode::kInvalidArgument) {
      ASSERT_FALSE(f.ok());
      EXPECT_TRUE(f.error().code == ErrorCode::kInvalidArgument) << f.error().message;
    }
  }
  auto zc = decode_wav(zero_channels);
  ASSERT_FALSE(zc.ok());
  EXPECT_EQ(zc.error().code, ErrorCode::kInvalidArgument);
}

TEST(AudioWav, DurationLimitStatesBothValues) {
  auto bytes = make_wav({1, 1, 16000, 16, false}, sine(440.0, 16000, 16000 * 3, 1));
  AudioLimits limits;
  limits.max_duration_seconds = 2.0;
  for (auto decode : {&decode_wav, &decode_audio}) {
    auto r = decode(bytes, limits);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kTooLarge);
    EXPECT_NE(r.error().message.find("limit of 2.0 s"), std::string::npos) << r.error().message;
    // The actual length: exact when the header states it, a lower bound when decoding stopped at the limit.
    const std::string& msg = r.error().message;
    EXPECT_TRUE(msg.find("is 3.0 s") != std::string::npos || msg.find("more than 2.") != std::string::npos) << msg;
  }
}

TEST(AudioWav, NonFiniteFloatSamplesBecomeZero) {
  std::vector<double> values = {0.5, NAN, INFINITY, -0.25};
  auto a = decode_wav(make_wav({3, 1, 16000, 32, false}, values));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->samples, (std::vector<float>{0.5f, 0.0f, 0.0f, -0.25f}));
}

}  // namespace
}  // namespace fathom::formats
