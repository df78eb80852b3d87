// Audio decoding: every accepted format decodes to 16 kHz mono matching the reference signal; bad input
// gets the right error code and a message stating the limit or the problem.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "formats/audio/audio.h"
#include "support/files.h"
#include "support/paths.h"

namespace fathom::formats {
namespace {

using fathom::testing::read_bytes;

std::vector<uint8_t> fixture_bytes(const std::string& name) { return read_bytes(testing::fixture("audio/" + name)); }

// jfk.wav: 16 kHz mono int16, the reference the clips were cut from (clips start at 1.0 s of jfk.flac).
const std::vector<float>& jfk_reference() {
  static const std::vector<float> samples = [] {
    auto audio = decode_wav(read_bytes(testing::shared_dir() / "assets/whisper/jfk.wav"));
    EXPECT_TRUE(audio.ok());
    return audio.ok() ? audio->samples : std::vector<float>{};
  }();
  return samples;
}

// Normalised cross-correlation of `x` with the reference span starting at `ref_start + lag`, maximised over
// |lag| <= max_lag samples (codecs and resamplers may shift the signal by a few samples).
struct Match {
  double ncc = -1.0;
  int lag = 0;
};
Match best_match(const std::vector<float>& x, std::size_t ref_start, int max_lag) {
  const auto& ref = jfk_reference();
  // Skip the first and last 20 ms: codec priming and end trimming taper the edges.
  const int64_t edge = 320;
  const int64_t n = static_cast<int64_t>(x.size()) - 2 * edge;
  Match best;
  for (int lag = -max_lag; lag <= max_lag; ++lag) {
    double sxy = 0, sxx = 0, syy = 0;
    for (int64_t i = edge; i < edge + n; ++i) {
      int64_t j = static_cast<int64_t>(ref_start) + i + lag;
      double y = (j >= 0 && j < static_cast<int64_t>(ref.size())) ? ref[j] : 0.0;
      sxy += x[i] * y;
      sxx += static_cast<double>(x[i]) * x[i];
      syy += y * y;
    }
    double ncc = sxy / std::sqrt(sxx * syy + 1e-30);
    if (ncc > best.ncc) best = {ncc, lag};
  }
  return best;
}

struct Clip {
  const char* file;
  double seconds;       // length of the span that was encoded
  double tolerance_s;   // one codec frame: priming/padding not removed by the container is at most that
  double min_ncc;       // lossless ~1 (only the 44.1k -> 16k resampling differs), lossy > 0.9
  int max_shift = 16;   // samples (1 ms); codecs without gapless metadata keep their encoder delay
};

// Frame lengths: mp3 576 samples at 22.05 kHz (26 ms), AAC 1024 at 22.05/44.1 kHz (46/23 ms), Vorbis
// long blocks 2048 at 22.05 kHz (93 ms, but granule positions trim exactly), Opus 20 ms, MP2 1152 at
// 16 kHz (72 ms; MPEG-PS has no gapless info).
const Clip kClips[] = {
    {"jfk_2s5.mp3", 2.5, 0.027, 0.9},
    {"jfk_2s5.m4a", 2.5, 0.047, 0.9},
    {"jfk_2s5_stereo.mp4", 2.5, 0.024, 0.9},
    {"jfk_2s5_vorbis.ogg", 2.5, 0.093, 0.9},
    {"jfk_2s5_opus.ogg", 2.5, 0.020, 0.9},
    {"jfk_2s5_opus.webm", 2.5, 0.020, 0.9},
    {"jfk_2s5_mp2.mpeg", 2.5, 0.072, 0.9, 1152},
    {"jfk_2s5_16k.flac", 2.5, 0.0, 0.995},
    {"jfk_0s8_44k_stereo.wav", 0.8, 0.0, 0.995},
};

#if FATHOM_WITH_FFMPEG

TEST(AudioDecode, EveryFormatMatchesReference) {
  for (const Clip& clip : kClips) {
    SCOPED_TRACE(clip.file);
    auto audio = decode_audio(fixture_bytes(clip.file));
    ASSERT_TRUE(audio.ok()) << audio.error().message;
    EXPECT_EQ(audio->sample_rate, 16000);
    const double expected = clip.seconds * 16000;
    const double got = static_cast<double>(audio->samples.size());
    EXPECT_LE(std::abs(got - expected), clip.tolerance_s * 16000 + 1)
        << "decoded " << got << " samples, expected " << expected;
    Match m = best_match(audio->samples, 16000, clip.max_shift + 16);
    std::printf("%-24s %-8s %-10s %6d Hz %d ch -> %7zu samples (%+6.0f), ncc %.5f at lag %d\n", clip.file,
                audio->source_format.substr(0, 8).c_str(), audio->source_codec.c_str(), audio->source_sample_rate,
                audio->source_channels, audio->samples.size(), got - expected, m.ncc, m.lag);
    EXPECT_GT(m.ncc, clip.min_ncc);
    EXPECT_LE(std::abs(m.lag), clip.max_shift) << "signal shifted too far";
  }
}

TEST(AudioDecode, BuiltInWavReaderAgreesWithFfmpeg) {
  auto bytes = fixture_bytes("jfk_0s8_44k_stereo.wav");
  auto a = decode_audio(bytes);
  auto b = decode_wav(bytes);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->samples.size(), b->samples.size());
  double err = 0, energy = 0;
  for (std::size_t i = 320; i + 320 < a->samples.size(); ++i) {
    err += std::pow(a->samples[i] - b->samples[i], 2);
    energy += std::pow(a->samples[i], 2);
  }
  EXPECT_LT(err / energy, 1e-3) << "relative error energy";
}

TEST(AudioDecode, TruncatedFilesAreRejected) {
  for (const char* file : {"jfk_2s5.m4a", "jfk_2s5_16k.flac", "jfk_0s8_44k_stereo.wav", "jfk_2s5_stereo.mp4", "jfk_2s5.mp3", "jfk_2s5_vorbis.ogg", "jfk_2s5_opus.ogg", "jfk_2s5_opus.webm"}) {
    SCOPED_TRACE(file);
    auto bytes = fixture_bytes(file);
    bytes.resize(bytes.size() * 6 / 10);
    auto r = decode_audio(bytes);
    if (r.ok()) {
      ADD_FAILURE() << "decoded " << r->samples.size() << " samples";
      continue;
    }
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << r.error().message;
    std::printf("%s cut to 60%%: %s\n", file, r.error().message.c_str());
  }
  // MPEG-PS (like raw mp3 frames without a Xing header) states no length: a cut file decodes to a prefix.
  auto mpeg = fixture_bytes("jfk_2s5_mp2.mpeg");
  mpeg.resize(mpeg.size() * 6 / 10);
  auto prefix = decode_audio(mpeg);
  ASSERT_TRUE(prefix.ok()) << prefix.error().message;
  EXPECT_LT(prefix->duration_seconds(), 2.0);
  std::vector<float> first_second(prefix->samples.begin(), prefix->samples.begin() + 16000);
  EXPECT_GT(best_match(first_second, 16000, 1152 + 16).ncc, 0.9);
  // A file cut inside its header.
  auto head = fixture_bytes("jfk_2s5.mp3");
  head.resize(40);
  auto r = decode_audio(head);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << r.error().message;
}

TEST(AudioDecode, NoAudioStream) {
  auto r = decode_audio(fixture_bytes("no_audio.webm"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("no audio stream"), std::string::npos) << r.error().message;
}

TEST(AudioDecode, DurationLimit) {
  AudioLimits limits;
  limits.max_duration_seconds = 1.0;
  for (const char* file : {"jfk_2s5.mp3", "jfk_2s5_opus.webm", "jfk_2s5_16k.flac"}) {
    SCOPED_TRACE(file);
    auto r = decode_audio(fixture_bytes(file), limits);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kTooLarge);
    EXPECT_NE(r.error().message.find("limit of 1.0 s"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("more than 1."), std::string::npos) << r.error().message;
  }
  limits.max_duration_seconds = 2.6;
  EXPECT_TRUE(decode_audio(fixture_bytes("jfk_2s5.mp3"), limits).ok());
}

#else  // built-in WAV reader only

TEST(AudioDecode, OtherFormatsAreUnsupportedWithoutFfmpeg) {
  for (const Clip& clip : kClips) {
    if (std::string(clip.file).ends_with(".wav")) continue;
    auto r = decode_audio(fixture_bytes(clip.file));
    ASSERT_FALSE(r.ok()) << clip.file;
    EXPECT_EQ(r.error().code, ErrorCode::kUnsupported) << clip.file;
    EXPECT_NE(r.error().message.find("FFmpeg"), std::string::npos) << r.error().message;
  }
}

#endif

TEST(AudioDecode, WavMatchesReference) {
  for (auto decode : {&decode_audio, &decode_wav}) {
    auto audio = decode(fixture_bytes("jfk_0s8_44k_stereo.wav"), {});
    ASSERT_TRUE(audio.ok()) << audio.error().message;
    EXPECT_EQ(audio->source_sample_rate, 44100);
    EXPECT_EQ(audio->source_channels, 2);
    EXPECT_EQ(audio->samples.size(), 12800u);
    Match m = best_match(audio->samples, 16000, 160);
    EXPECT_GT(m.ncc, 0.995);
    EXPECT_LE(std::abs(m.lag), 2);
  }
}

TEST(AudioDecode, EmptyRandomAndTextInput) {
  for (auto decode : {&decode_audio, &decode_wav}) {
    auto empty = decode({}, {});
    ASSERT_FALSE(empty.ok());
    EXPECT_EQ(empty.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(empty.error().message.find("empty"), std::string::npos);

    std::mt19937 rng(7);
    for (std::size_t size : {1u, 17u, 4096u, 100000u}) {
      std::vector<uint8_t> noise(size);
      for (auto& b : noise) b = static_cast<uint8_t>(rng());
      auto r = decode(noise, {});
      ASSERT_FALSE(r.ok()) << size;
      EXPECT_TRUE(r.error().code == ErrorCode::kInvalidArgument || r.error().code == ErrorCode::kUnsupported)
          << r.error().message;
    }
    std::string text = "This is not audio.\nJust a few lines of plain text that someone uploaded by mistake.\n";
    for (int i = 0; i < 5; ++i) text += text;
    auto r = decode(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()), {});
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().code == ErrorCode::kInvalidArgument || r.error().code == ErrorCode::kUnsupported);
  }
}

TEST(AudioDecode, SizeLimit) {
  AudioLimits limits;
  limits.max_bytes = 1000;
  auto bytes = fixture_bytes("jfk_2s5.mp3");
  for (auto decode : {&decode_audio, &decode_wav}) {
    auto r = decode(bytes, limits);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kTooLarge);
    EXPECT_NE(r.error().message.find("limit of 1000 bytes"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(std::to_string(bytes.size()) + " bytes"), std::string::npos) << r.error().message;
  }
}

}  // namespace
}  // namespace fathom::formats
