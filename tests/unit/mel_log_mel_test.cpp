// Whisper log-mel features against transformers' WhisperFeatureExtractor (committed fixtures) and the
// filter bank against OpenAI whisper's mel_filters.npz.
#include <gtest/gtest.h>
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <complex>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "formats/audio/audio.h"
#include "formats/mel/fft.h"
#include "formats/mel/log_mel.h"
#include "support/files.h"
#include "support/paths.h"

namespace fathom::formats {
namespace {

using fathom::testing::read_bytes;

uint32_t le32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24); }
uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// A .npy of little-endian float32 in C order.
NpyArray parse_npy(const std::vector<uint8_t>& b) {
  NpyArray a;
  EXPECT_GE(b.size(), 10u);
  EXPECT_EQ(std::memcmp(b.data(), "\x93NUMPY", 6), 0);
  std::size_t header_len = b[6] == 1 ? le16(&b[8]) : le32(&b[8]);
  std::size_t offset = b[6] == 1 ? 10 : 12;
  std::string header(b.begin() + offset, b.begin() + offset + header_len);
  EXPECT_NE(header.find("'descr': '<f4'"), std::string::npos) << header;
  EXPECT_NE(header.find("'fortran_order': False"), std::string::npos) << header;
  std::smatch m;
  std::regex shape_re("'shape': \\((\\d+), (\\d+)\\)");
  EXPECT_TRUE(std::regex_search(header, m, shape_re)) << header;
  a.shape = {std::stoll(m[1]), std::stoll(m[2])};
  std::size_t count = static_cast<std::size_t>(a.shape[0] * a.shape[1]);
  EXPECT_EQ(b.size(), offset + header_len + count * 4);
  a.data.resize(count);
  std::memcpy(a.data.data(), b.data() + offset + header_len, count * 4);
  return a;
}

// Members of a zip (stored or deflated) by name; enough for numpy's .npz.
std::map<std::string, std::vector<uint8_t>> read_zip(const std::vector<uint8_t>& z) {
  std::map<std::string, std::vector<uint8_t>> files;
  std::size_t pos = 0;
  while (pos + 30 <= z.size() && le32(&z[pos]) == 0x04034b50u) {
    uint16_t flags = le16(&z[pos + 6]), method = le16(&z[pos + 8]);
    uint32_t csize = le32(&z[pos + 18]), usize = le32(&z[pos + 22]);
    uint16_t name_len = le16(&z[pos + 26]), extra_len = le16(&z[pos + 28]);
    EXPECT_EQ(flags & 8, 0) << "zip data descriptors are not handled";
    std::string name(z.begin() + pos + 30, z.begin() + pos + 30 + name_len);
    const uint8_t* data = &z[pos + 30 + name_len + extra_len];
    std::vector<uint8_t> out(usize);
    if (method == 0) {
      std::memcpy(out.data(), data, usize);
    } else {
      EXPECT_EQ(method, 8) << name;
      z_stream s{};
      EXPECT_EQ(inflateInit2(&s, -MAX_WBITS), Z_OK);
      s.next_in = const_cast<uint8_t*>(data);
      s.avail_in = csize;
      s.next_out = out.data();
      s.avail_out = usize;
      EXPECT_EQ(inflate(&s, Z_FINISH), Z_STREAM_END) << name;
      inflateEnd(&s);
    }
    files[name] = std::move(out);
    pos += 30 + name_len + extra_len + csize;
  }
  return files;
}

std::vector<float> jfk_samples() {
  auto bytes = read_bytes(testing::shared_dir() / "assets/whisper/jfk.wav");
  auto audio = decode_wav(bytes);
  EXPECT_TRUE(audio.ok()) << audio.error().message;
  return audio.ok() ? audio->samples : std::vector<float>{};
}

TEST(MelFft, MatchesNaiveDft) {
  for (int n : {1, 2, 3, 4, 5, 7, 8, 12, 49, 200, 400, 11 * 13}) {
    FftPlan plan(n);
    std::mt19937 rng(n);
    std::normal_distribution<double> dist;
    std::vector<std::complex<double>> in(n), out(n);
    for (auto& v : in) v = {dist(rng), dist(rng)};
    plan.forward(in.data(), out.data());
    double max_err = 0;
    for (int k = 0; k < n; ++k) {
      std::complex<double> acc = 0;
      for (int j = 0; j < n; ++j) acc += in[j] * std::polar(1.0, -2.0 * M_PI * j * k / n);
      max_err = std::max(max_err, std::abs(acc - out[k]));
    }
    EXPECT_LT(max_err, 1e-10 * n) << "n=" << n;
  }
}

TEST(MelFft, RealFftMatchesNaiveDft) {
  const int n = 400;
  RealFftPlan plan(n);
  std::mt19937 rng(1);
  std::normal_distribution<double> dist;
  std::vector<double> in(n);
  for (auto& v : in) v = dist(rng);
  std::vector<std::complex<double>> out(n / 2 + 1), scratch(n);
  plan.forward(in.data(), out.data(), scratch.data());
  double max_err = 0;
  for (int k = 0; k <= n / 2; ++k) {
    std::complex<double> acc = 0;
    for (int j = 0; j < n; ++j) acc += in[j] * std::polar(1.0, -2.0 * M_PI * j * k / n);
    max_err = std::max(max_err, std::abs(acc - out[k]));
  }
  EXPECT_LT(max_err, 1e-9);
}

TEST(MelFilters, MatchWhisperNpz) {
  auto files = read_zip(read_bytes(testing::shared_dir() / "assets/whisper/mel_filters.npz"));
  for (int n_mels : {80, 128}) {
    std::string name = "mel_" + std::to_string(n_mels) + ".npy";
    ASSERT_TRUE(files.count(name)) << name;
    NpyArray ref = parse_npy(files[name]);
    ASSERT_EQ(ref.shape, (std::vector<int64_t>{n_mels, kMelFreqBins}));
    auto ours = whisper_mel_filters(n_mels);
    ASSERT_TRUE(ours.ok());
    ASSERT_EQ(ours->size(), ref.data.size());
    double max_err = 0;
    for (std::size_t i = 0; i < ref.data.size(); ++i)
      max_err = std::max(max_err, static_cast<double>(std::abs((*ours)[i] - ref.data[i])));
    std::printf("mel filters %d: max abs error vs mel_filters.npz %.3g\n", n_mels, max_err);
    EXPECT_LT(max_err, 1e-6);
  }
}

TEST(MelFilters, RejectBadCount) {
  EXPECT_EQ(whisper_mel_filters(0).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(whisper_mel_filters(1000).error().code, ErrorCode::kInvalidArgument);
}

void check_against_fixture(const std::string& model, int n_mels) {
  auto samples = jfk_samples();
  ASSERT_EQ(samples.size(), 176000u);  // 11 s
  auto ref_bytes = read_bytes(testing::fixture("models/" + model + ".jfk-mel.f32"));
  const int64_t ref_frames = 1200;
  ASSERT_EQ(ref_bytes.size(), static_cast<std::size_t>(n_mels * ref_frames * 4));
  std::vector<float> ref(ref_bytes.size() / 4);
  std::memcpy(ref.data(), ref_bytes.data(), ref_bytes.size());

  auto t0 = std::chrono::steady_clock::now();
  auto mel = whisper_log_mel_30s(samples, n_mels);
  auto t1 = std::chrono::steady_clock::now();
  ASSERT_TRUE(mel.ok()) << mel.error().message;
  ASSERT_EQ(mel->n_mels, n_mels);
  ASSERT_EQ(mel->n_frames, kWhisperChunkFrames);
  double max_err = 0;
  for (int m = 0; m < n_mels; ++m)
    for (int64_t t = 0; t < ref_frames; ++t)
      max_err = std::max(max_err, static_cast<double>(std::abs(mel->at(m, t) - ref[m * ref_frames + t])));
  std::printf("log-mel %d vs WhisperFeatureExtractor: max abs error %.3g over %d x %lld; %.2f ms per 30 s window\n",
              n_mels, max_err, n_mels, static_cast<long long>(ref_frames),
              std::chrono::duration<double, std::milli>(t1 - t0).count());
  EXPECT_LT(max_err, 1e-4);
}

TEST(LogMel, MatchesFeatureExtractor80) { check_against_fixture("whisper-tiny-random-f32", 80); }
TEST(LogMel, MatchesFeatureExtractor128) { check_against_fixture("whisper-v3-random-f16", 128); }

TEST(LogMel, Speed) {
  auto samples = jfk_samples();
  for (int n_mels : {80, 128}) {
    for (int threads : {1, 2}) {
      LogMelOptions o;
      o.n_mels = n_mels;
      o.threads = threads;
      ASSERT_TRUE(whisper_log_mel(samples, o).ok());  // warm-up (filter bank cache)
      const int reps = 5;
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < reps; ++i) ASSERT_TRUE(whisper_log_mel(samples, o).ok());
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
      std::printf("log-mel %d mels, %d thread(s): %.2f ms per 30 s window\n", n_mels, threads, ms);
    }
  }
}

TEST(LogMel, PadsAndTrimsTo30Seconds) {
  auto samples = jfk_samples();
  auto a = whisper_log_mel_30s(samples, 80);
  std::vector<float> padded(samples);
  padded.resize(kWhisperChunkSamples + 12345, 0.0f);  // longer than 30 s: truncated back to the same input
  auto b = whisper_log_mel_30s(padded, 80);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->data, b->data);
}

TEST(LogMel, LongVariantAndThreadsAgree) {
  auto samples = jfk_samples();
  // Long variant of exactly 30 s equals the 30-s window.
  std::vector<float> padded(samples);
  padded.resize(kWhisperChunkSamples, 0.0f);
  auto window = whisper_log_mel_30s(samples, 80);
  auto longv = whisper_log_mel_long(padded, 80, /*threads=*/3);
  ASSERT_TRUE(window.ok() && longv.ok());
  ASSERT_EQ(longv->n_frames, kWhisperChunkFrames);
  EXPECT_EQ(window->data, longv->data);
  // 11 s unpadded: 1100 frames, normalised by its own maximum, same as the padded one where the
  // global maximum (the speech) is the same.
  auto unpadded = whisper_log_mel_long(samples, 80);
  ASSERT_TRUE(unpadded.ok());
  ASSERT_EQ(unpadded->n_frames, 1100);
  double max_err = 0;
  for (int m = 0; m < 80; ++m)
    for (int64_t t = 0; t < 1098; ++t)  // the last frames see reflect padding instead of zeros
      max_err = std::max(max_err, static_cast<double>(std::abs(unpadded->at(m, t) - window->at(m, t))));
  EXPECT_LT(max_err, 1e-6);
}

TEST(LogMel, ShortAndEdgeInputs) {
  std::vector<float> tiny(100, 0.1f);
  EXPECT_EQ(whisper_log_mel_long(tiny, 80).error().code, ErrorCode::kInvalidArgument);
  std::vector<float> few(170, 0.25f);  // shorter than the reflect padding: folds repeatedly
  auto r = whisper_log_mel_long(few, 80);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->n_frames, 1);
  for (float v : r->data) EXPECT_TRUE(std::isfinite(v));
  auto silent = whisper_log_mel_30s({}, 128);  // empty -> 30 s of silence: log10(1e-10) everywhere
  ASSERT_TRUE(silent.ok());
  for (float v : silent->data) EXPECT_FLOAT_EQ(v, (-10.0f + 4.0f) / 4.0f);
  EXPECT_EQ(whisper_log_mel_30s(few, 0).error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace fathom::formats
