// Whisper on CUDA against transformers (the fixtures' reference.json) and against the CPU path: greedy
// transcription / translation / timestamps / language detection token for token in f32; in f16 and bf16
// the detected language must agree and the matching token count is reported. Batched jobs equal single
// jobs; the device log-mel equals the CPU log-mel and the feature extractor's (1e-4); audio handed to
// SpeechToText::start (log-mel on the device) transcribes like the host mel. Skipped without a device.
#if FATHOM_WITH_CUDA  // CUDA-only test; CPU builds compile nothing here
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "backends/cuda/device.h"
#include "formats/audio/audio.h"
#include "formats/mel/log_mel.h"
#include "models/whisper/whisper_model.h"
#include "support/files.h"
#include "support/paths.h"
#include "support/whisper_inputs.h"

namespace fathom::models::whisper {
namespace {

using nlohmann::json;
using fathom::testing::read_bytes;
using fathom::testing::read_json;

using Case = fathom::testing::WhisperCase;
using fathom::testing::whisper_case_name;

using Fixture = fathom::testing::LoadedWhisper;

Fixture load(const Case& c, int slots = 0) {
  LoadOptions o;
  o.device = Device::cuda(0);
  o.dtype = c.dtype;
  return fathom::testing::load_whisper_fixture(c.fixture, o, slots);
}

std::size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  std::size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

// Runs jobs stepped together until all are done.
std::vector<Transcription> run_batch(WhisperSpeech& speech, std::vector<std::unique_ptr<SpeechJob>>& jobs) {
  std::vector<SpeechJob*> ptrs;
  for (auto& j : jobs) ptrs.push_back(j.get());
  for (int guard = 0; guard < 100000; ++guard) {
    bool all = true;
    for (auto* j : ptrs) all = all && j->done();
    if (all) break;
    speech.step(ptrs);
  }
  std::vector<Transcription> out;
  for (auto& j : jobs) {
    EXPECT_TRUE(j->done());
    auto r = j->result();
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    out.push_back(r.ok() ? r.value() : Transcription{});
  }
  return out;
}

class CudaWhisper : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_P(CudaWhisper, GreedyMatchesTransformers) {
  Fixture f = load(GetParam());
  ASSERT_TRUE(f.model);
  EXPECT_EQ(f.model->dtype(), GetParam().dtype);
  EXPECT_EQ(f.model->device().kind, DeviceKind::kCuda);
  EXPECT_GT(f.model->memory_bytes(), 0u);
  const bool exact = GetParam().dtype == DType::kF32;
  const int max_new = f.reference["max_new_tokens"].get<int>();
  int cases = 0;
  for (const auto& [key, c] : f.reference["generate"].items()) {
    if (!c.contains("tokens")) continue;
    ++cases;
    SCOPED_TRACE(key);
    auto r = f.model->speech().transcribe(f.mel.data, 3000, f.duration, fathom::testing::speech_options_of(c["kwargs"], max_new));
    ASSERT_TRUE(r.ok()) << r.error().message;
    const auto ref = c["tokens"].get<std::vector<int32_t>>();
    std::cout << "[cuda whisper] " << GetParam().fixture << " " << dtype_name(GetParam().dtype) << " " << key << ": "
              << common_prefix(r->tokens, ref) << "/" << ref.size() << " tokens match transformers (prefix), "
              << r->tokens.size() << " generated\n";
    if (exact) EXPECT_EQ(r->tokens, ref);
    if (!c["kwargs"].contains("language")) {
      // Language detection must agree in every dtype: the reference's best language token.
      const int best = f.reference["generate"]["language_probs"]["best_token"].get<int>();
      const auto& gen = f.model->speech().generation_config();
      EXPECT_EQ(gen.language_token(r->language).value_or(-1), best) << "detected " << r->language;
    }
  }
  EXPECT_EQ(cases, 4);
}

TEST_P(CudaWhisper, BatchedJobsEqualSingleJobs) {
  Fixture f = load(GetParam());
  ASSERT_TRUE(f.model);
  const int max_new = f.reference["max_new_tokens"].get<int>();
  WhisperSpeech& speech = f.model->speech();
  std::vector<std::unique_ptr<SpeechJob>> jobs;
  std::vector<std::vector<int32_t>> single;
  for (int copy = 0; copy < 3; ++copy)
    for (const auto& [key, c] : f.reference["generate"].items()) {
      if (!c.contains("tokens")) continue;
      const SpeechOptions o = fathom::testing::speech_options_of(c["kwargs"], max_new);
      if (copy == 0) {
        auto r = speech.transcribe(f.mel.data, 3000, f.duration, o);
        ASSERT_TRUE(r.ok()) << r.error().message;
        single.push_back(r->tokens);
      }
      auto j = speech.start_mel(f.mel.data, 3000, f.duration, o);
      ASSERT_TRUE(j.ok());
      jobs.push_back(std::move(j).value());
    }
  auto batched = run_batch(speech, jobs);
  std::size_t same = 0;
  for (std::size_t i = 0; i < batched.size(); ++i) {
    const auto& want = single[i % single.size()];
    same += batched[i].tokens == want ? 1 : 0;
    if (GetParam().dtype == DType::kF32) EXPECT_EQ(batched[i].tokens, want) << "job " << i;
  }
  std::cout << "[cuda whisper] " << GetParam().fixture << " " << dtype_name(GetParam().dtype) << ": " << same << "/"
            << batched.size() << " batched jobs equal their single run\n";
  EXPECT_EQ(f.model->network().free_slots(), f.model->network().slot_count());
}

TEST_P(CudaWhisper, AudioInputUsesDeviceLogMel) {
  Fixture f = load(GetParam());
  ASSERT_TRUE(f.model);
  ASSERT_TRUE(f.model->network().computes_log_mel());
  // The device log-mel against the CPU one and the feature extractor's.
  auto dev = f.model->network().device_log_mel(f.samples);
  ASSERT_TRUE(dev.ok()) << dev.error().message;
  ASSERT_EQ(dev->size(), f.mel.data.size());
  double vs_cpu = 0;
  for (std::size_t i = 0; i < dev->size(); ++i)
    vs_cpu = std::max(vs_cpu, std::abs(static_cast<double>((*dev)[i]) - f.mel.data[i]));
  // The feature extractor's mel of the fixture is stored for the first `frames` columns.
  const int n_mels = f.reference["mel_shape"][0].get<int>(), frames = f.reference["mel_shape"][1].get<int>();
  auto raw = read_bytes(fathom::testing::fixture("models/" + f.reference["mel_file"].get<std::string>()));
  ASSERT_EQ(raw.size(), static_cast<std::size_t>(n_mels) * frames * sizeof(float));
  std::vector<float> ref(raw.size() / sizeof(float));
  std::memcpy(ref.data(), raw.data(), raw.size());
  double vs_ref = 0;
  for (int m = 0; m < n_mels; ++m)
    for (int t = 0; t < frames; ++t)
      vs_ref = std::max(vs_ref, std::abs(static_cast<double>((*dev)[static_cast<std::size_t>(m) * 3000 + t]) -
                                         ref[static_cast<std::size_t>(m) * frames + t]));
  std::cout << "[cuda whisper] device log-mel max |diff|: " << vs_cpu << " vs cpu, " << vs_ref << " vs transformers\n";
  EXPECT_LT(vs_cpu, 1e-4);
  EXPECT_LT(vs_ref, 1e-4);
  // SpeechToText::start with samples (mel on the device) gives the host-mel transcription.
  const int max_new = f.reference["max_new_tokens"].get<int>();
  const SpeechOptions o = fathom::testing::speech_options_of(f.reference["generate"]["transcribe_en"]["kwargs"], max_new);
  auto host = f.model->speech().transcribe(f.mel.data, 3000, f.duration, o);
  ASSERT_TRUE(host.ok());
  auto job = f.model->speech().start(f.samples, o);
  ASSERT_TRUE(job.ok()) << job.error().message;
  std::vector<std::unique_ptr<SpeechJob>> jobs;
  jobs.push_back(std::move(job).value());
  auto r = run_batch(f.model->speech(), jobs);
  if (GetParam().dtype == DType::kF32) EXPECT_EQ(r[0].tokens, host->tokens);
  std::cout << "[cuda whisper] " << dtype_name(GetParam().dtype) << " audio input: "
            << common_prefix(r[0].tokens, host->tokens) << "/" << host->tokens.size()
            << " tokens equal the host-mel run\n";
}

TEST_P(CudaWhisper, SlotCountAndBudget) {
  Fixture f = load(GetParam());
  ASSERT_TRUE(f.model);
  EXPECT_EQ(f.model->network().slot_count(), WhisperModel::kCudaSlots);
  Fixture g = load(GetParam(), 3);
  ASSERT_TRUE(g.model);
  EXPECT_EQ(g.model->network().slot_count(), 3);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaWhisper,
                         ::testing::Values(Case{"whisper-tiny-random-f32", DType::kF32},
                                           Case{"whisper-tiny-random-f32", DType::kF16},
                                           Case{"whisper-tiny-random-f32", DType::kBF16},
                                           Case{"whisper-v3-random-f16", DType::kF32},
                                           Case{"whisper-v3-random-f16", DType::kF16},
                                           Case{"whisper-v3-random-f16", DType::kBF16}),
                         whisper_case_name);

TEST(CudaWhisperLoad, AutoDtypeAndErrors) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const auto dir = fathom::testing::fixture("models/whisper-v3-random-f16");
  LoadOptions o;
  o.device = Device::cuda(0);
  auto m = WhisperModel::load(dir, read_json(dir / "config.json"), o, whisper_model_info());
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ((*m)->dtype(), DType::kF16) << "auto = the checkpoint's 16-bit dtype";
  const auto tiny = fathom::testing::fixture("models/whisper-tiny-random-f32");
  m = WhisperModel::load(tiny, read_json(tiny / "config.json"), o, whisper_model_info());
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ((*m)->dtype(), DType::kF16) << "auto on an f32 checkpoint = f16";
  o.device = Device::cuda(cuda::device_count());
  m = WhisperModel::load(tiny, read_json(tiny / "config.json"), o, whisper_model_info());
  EXPECT_FALSE(m.ok()) << "a device index past the last";
  o.device = Device::cuda(0);
  o.memory_budget = 1024;
  m = WhisperModel::load(tiny, read_json(tiny / "config.json"), o, whisper_model_info());
  ASSERT_FALSE(m.ok()) << "a budget below the weights";
  EXPECT_EQ(m.error().code, ErrorCode::kOutOfMemory);
}

}  // namespace
}  // namespace fathom::models::whisper
#endif  // FATHOM_WITH_CUDA
