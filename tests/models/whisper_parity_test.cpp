// Whisper network parity against transformers (tests/fixtures/models/<name>.reference.json, made by
// scripts/make_fixtures.py): generate() tokens for jfk.wav in four settings, the language log-probs of the
// first step, and the log-mel input. Also: batched jobs equal single jobs, and clear load errors.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "engine/metrics.h"
#include "engine/speech_scheduler.h"
#include "formats/audio/audio.h"
#include "formats/mel/log_mel.h"
#include "formats/safetensors.h"
#include "formats/safetensors_writer.h"
#include "models/registry.h"
#include "models/whisper/transcription.h"
#include "models/whisper/whisper_model.h"
#include "support/files.h"
#include "support/paths.h"
#include "support/whisper_inputs.h"

namespace fathom::models::whisper {
namespace {

using nlohmann::json;
using fathom::testing::read_bytes;
using fathom::testing::read_json;

using Loaded = fathom::testing::LoadedWhisper;

Loaded load(const std::string& name) { return fathom::testing::load_whisper_fixture(name, LoadOptions{}); }

class WhisperParity : public ::testing::TestWithParam<std::string> {};

TEST_P(WhisperParity, LogMelMatchesFeatureExtractor) {
  Loaded l = load(GetParam());
  ASSERT_TRUE(l.model);
  const auto shape = l.reference["mel_shape"];
  const int n_mels = shape[0].get<int>(), frames = shape[1].get<int>();
  ASSERT_EQ(n_mels, l.model->config().num_mel_bins);
  auto raw = read_bytes(fathom::testing::fixture("models/" + l.reference["mel_file"].get<std::string>()));
  ASSERT_EQ(raw.size(), static_cast<std::size_t>(n_mels) * frames * sizeof(float));
  std::vector<float> ref(raw.size() / sizeof(float));
  std::memcpy(ref.data(), raw.data(), raw.size());
  ASSERT_EQ(l.mel.n_frames, 3000);
  double max_diff = 0;
  for (int m = 0; m < n_mels; ++m)
    for (int t = 0; t < frames; ++t)
      max_diff = std::max(max_diff, std::abs(static_cast<double>(l.mel.at(m, t)) - ref[static_cast<std::size_t>(m) * frames + t]));
  EXPECT_LT(max_diff, 1e-4);
}

TEST_P(WhisperParity, GenerateTokensMatchTransformers) {
  Loaded l = load(GetParam());
  ASSERT_TRUE(l.model);
  const int max_new = l.reference["max_new_tokens"].get<int>();
  int cases = 0;
  for (const auto& [key, c] : l.reference["generate"].items()) {
    if (!c.contains("tokens")) continue;
    ++cases;
    SCOPED_TRACE(key);
    ASSERT_FALSE(c.value("includes_prompt", false));
    auto r = l.model->speech().transcribe(l.mel.data, 3000, l.duration, fathom::testing::speech_options_of(c["kwargs"], max_new));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->tokens, c["tokens"].get<std::vector<int32_t>>());
    if (!c["kwargs"].contains("language")) EXPECT_FALSE(r->language.empty()) << "language detected";
  }
  EXPECT_EQ(cases, 4);
}

TEST_P(WhisperParity, LanguageLogProbsOfFirstStep) {
  Loaded l = load(GetParam());
  ASSERT_TRUE(l.model);
  const json ref = l.reference["generate"]["language_probs"];
  WhisperNetwork& net = l.model->network();
  auto slots = net.acquire_slots(1);
  ASSERT_TRUE(slots.ok());
  std::vector<std::span<const float>> windows{std::span<const float>(l.mel.data)};
  ASSERT_TRUE(net.encode(windows, {slots.value()}).ok());
  WindowOptions wo;
  wo.max_new_tokens = 1;
  WindowDecoder dec(l.model->speech().generation_config(), net.vocab_size(), net.max_target_positions(), wo,
                    slots.value());
  for (int guard = 0; !dec.done() && guard < 10; ++guard) {
    auto logits = net.decode(dec.rows());
    ASSERT_TRUE(logits.ok()) << logits.error().message;
    ASSERT_TRUE(dec.advance(logits.value()).ok());
  }
  ASSERT_TRUE(dec.done());
  const auto& lp = dec.result().language_logprobs;
  ASSERT_GE(lp.size(), 5u);
  EXPECT_EQ(lp[0].first, ref["best_token"].get<int>());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(lp[static_cast<std::size_t>(i)].first, ref["top5"][i][0].get<int>()) << "rank " << i;
    EXPECT_NEAR(lp[static_cast<std::size_t>(i)].second, ref["top5"][i][1].get<double>(), 1e-4) << "rank " << i;
  }
  net.release_slots(slots.value());
  EXPECT_EQ(net.free_slots(), WhisperModel::kDefaultSlots);
}

TEST_P(WhisperParity, BatchedJobsEqualSingleJobs) {
  Loaded l = load(GetParam());
  ASSERT_TRUE(l.model);
  const int max_new = l.reference["max_new_tokens"].get<int>();
  WhisperSpeech& speech = l.model->speech();
  std::vector<std::unique_ptr<SpeechJob>> jobs;
  std::vector<std::vector<int32_t>> expected;
  // Every reference case, plus a beam-search and a second copy of the first case, all in one batch.
  for (const auto& [key, c] : l.reference["generate"].items()) {
    if (!c.contains("tokens")) continue;
    auto j = speech.start_mel(l.mel.data, 3000, l.duration, fathom::testing::speech_options_of(c["kwargs"], max_new));
    ASSERT_TRUE(j.ok());
    jobs.push_back(std::move(j).value());
    expected.push_back(c["tokens"].get<std::vector<int32_t>>());
  }
  SpeechOptions beam = fathom::testing::speech_options_of(l.reference["generate"]["transcribe_en"]["kwargs"], max_new);
  beam.beams = 3;
  auto single_beam = speech.transcribe(l.mel.data, 3000, l.duration, beam);
  ASSERT_TRUE(single_beam.ok()) << single_beam.error().message;
  auto bj = speech.start_mel(l.mel.data, 3000, l.duration, beam);
  ASSERT_TRUE(bj.ok());
  jobs.push_back(std::move(bj).value());
  expected.push_back(single_beam->tokens);
  std::vector<SpeechJob*> ptrs;
  for (auto& j : jobs) ptrs.push_back(j.get());
  for (int guard = 0; guard < 100000; ++guard) {
    bool all = true;
    for (auto* j : ptrs) all = all && j->done();
    if (all) break;
    speech.step(ptrs);
  }
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    ASSERT_TRUE(jobs[i]->done());
    auto r = jobs[i]->result();
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->tokens, expected[i]) << "job " << i;
  }
  EXPECT_EQ(l.model->network().free_slots(), WhisperModel::kDefaultSlots);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, WhisperParity,
                         ::testing::Values("whisper-tiny-random-f32", "whisper-v3-random-f16"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (auto& ch : s)
                             if (ch == '-') ch = '_';
                           return s;
                         });

TEST(WhisperCancel, CancelledJobsFreeTheirSlots) {
  Loaded l = load("whisper-tiny-random-f32");
  ASSERT_TRUE(l.model);
  SpeechOptions o;
  o.language = "en";
  o.beams = 4;
  // Directly: a running beam-search job holds 4 slots until cancelled.
  auto job = l.model->speech().start_mel(l.mel.data, 3000, l.duration, o);
  ASSERT_TRUE(job.ok());
  std::vector<SpeechJob*> jobs{job.value().get()};
  for (int i = 0; i < 3; ++i) l.model->speech().step(jobs);
  EXPECT_EQ(l.model->network().free_slots(), WhisperModel::kDefaultSlots - 4);
  l.model->speech().cancel(job.value().get());
  EXPECT_TRUE(job.value()->done());
  EXPECT_FALSE(job.value()->result().ok());
  EXPECT_EQ(l.model->network().free_slots(), WhisperModel::kDefaultSlots);
  // Through the scheduler: a cancelled request ends at the next step, the other one finishes.
  engine::SpeechScheduler sched("tiny-metrics", l.model->speech(), {});
  const auto steps_before = engine::Metrics::global().steps("tiny-metrics");
  const auto waits_before = engine::Metrics::global().queue_waits("tiny-metrics");
  auto a = sched.start(l.samples, o);
  o.beams = 1;
  o.max_new_tokens = 24;
  auto b = sched.start(l.samples, o);
  ASSERT_TRUE(a.ok() && b.ok());
  sched.step();
  a.value()->cancel();
  for (int guard = 0; sched.has_work() && guard < 10000; ++guard) sched.step();
  EXPECT_FALSE(sched.has_work());
  ASSERT_TRUE(a.value()->done() && b.value()->done());
  EXPECT_EQ(a.value()->result().error().code, ErrorCode::kUnavailable);
  ASSERT_TRUE(b.value()->result().ok());
  EXPECT_EQ(b.value()->result()->tokens, l.reference["generate"]["transcribe_en"]["tokens"].get<std::vector<int32_t>>());
  EXPECT_EQ(l.model->network().free_slots(), WhisperModel::kDefaultSlots);
  // /metrics: every step's wall time, and one queue wait per request (when it joined the running batch).
  EXPECT_GE(engine::Metrics::global().steps("tiny-metrics"), steps_before + 2);
  EXPECT_EQ(engine::Metrics::global().queue_waits("tiny-metrics"), waits_before + 2);
}

TEST(WhisperLoad, MissingTensorIsNamed) {
  const auto src = fathom::testing::fixture("models/whisper-tiny-random-f32");
  const auto dir = std::filesystem::temp_directory_path() / "fathom-whisper-missing-tensor";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  for (const auto& f : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"})
    std::filesystem::copy_file(src / f, dir / f);
  auto ckpt = formats::Checkpoint::open(src);
  ASSERT_TRUE(ckpt.ok());
  std::vector<formats::TensorToWrite> tensors;
  for (const auto& name : ckpt->names()) {
    if (name == "model.decoder.layers.1.encoder_attn.v_proj.weight") continue;
    const auto* info = ckpt->find(name);
    formats::TensorToWrite t{name, info->dtype_name, info->shape,
                             std::vector<uint8_t>(static_cast<const uint8_t*>(info->data),
                                                  static_cast<const uint8_t*>(info->data) + info->nbytes)};
    tensors.push_back(std::move(t));
  }
  ASSERT_TRUE(formats::write_safetensors(dir / "model.safetensors", tensors).ok());
  auto m = WhisperModel::load(dir, read_json(dir / "config.json"), LoadOptions{}, whisper_model_info());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::kLoadFailed);
  EXPECT_NE(m.error().message.find("model.decoder.layers.1.encoder_attn.v_proj.weight"), std::string::npos)
      << m.error().message;
  EXPECT_NE(m.error().message.find("missing"), std::string::npos) << m.error().message;
  std::filesystem::remove_all(dir);
}

TEST(WhisperLoad, RegistryServesSpeechToText) {
  auto m = Registry::global().load(fathom::testing::fixture("models/whisper-v3-random-f16"), LoadOptions{});
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ((*m)->info().name, "whisper");
  EXPECT_EQ((*m)->architecture(), "WhisperForConditionalGeneration");
  EXPECT_EQ((*m)->as_embedder(), nullptr);
  SpeechToText* stt = (*m)->as_speech_to_text();
  ASSERT_NE(stt, nullptr);
  // start() takes 16 kHz samples and computes the 128-bin log-mel itself.
  auto job = stt->start(std::vector<float>(16000, 0.0f), SpeechOptions{});
  EXPECT_TRUE(job.ok()) << job.error().message;
  EXPECT_GT(stt->languages().size(), 90u);
  EXPECT_GT((*m)->memory_bytes(), 0u);
}

TEST(WhisperLoad, RefusesSixteenBitOnCpu) {
  const auto dir = fathom::testing::fixture("models/whisper-tiny-random-f32");
  LoadOptions o;
  o.dtype = DType::kF16;
  auto m = WhisperModel::load(dir, read_json(dir / "config.json"), o, whisper_model_info());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(m.error().message.find("float16"), std::string::npos) << m.error().message;
}

TEST(WhisperNetworkProtocol, RejectsBadRows) {
  const auto dir = fathom::testing::fixture("models/whisper-tiny-random-f32");
  auto m = WhisperModel::load(dir, read_json(dir / "config.json"), LoadOptions{}, whisper_model_info());
  ASSERT_TRUE(m.ok());
  WhisperNetwork& net = (*m)->network();
  DecodeRow row;
  row.slot = 0;
  row.tokens = {50258};
  auto r = net.decode({row});
  EXPECT_FALSE(r.ok()) << "slot not acquired";
  auto slots = net.acquire_slots(2);
  ASSERT_TRUE(slots.ok());
  r = net.decode({row});
  EXPECT_FALSE(r.ok()) << "no encoded window";
  std::vector<float> mel(80 * 3000, -0.5f);
  std::vector<std::span<const float>> w{std::span<const float>(mel)};
  ASSERT_TRUE(net.encode(w, {slots.value()}).ok());
  row.slot = slots.value()[0];
  row.tokens = {999999};
  EXPECT_FALSE(net.decode({row}).ok()) << "token outside the vocabulary";
  row.tokens = {50258, 50259};
  row.cached = 1;
  EXPECT_FALSE(net.decode({row}).ok()) << "cached beyond the cache";
  row.cached = 0;
  auto ok = net.decode({row});
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->size(), static_cast<std::size_t>(net.vocab_size()));
  // Incremental decoding equals a full recompute: cache 2 tokens, add a third.
  DecodeRow more = row;
  more.tokens = {50258, 50259, 50359};
  more.cached = 2;
  auto inc_span = net.decode({more});
  ASSERT_TRUE(inc_span.ok());
  const std::vector<float> inc_copy(inc_span->begin(), inc_span->end());  // the next decode() reuses the memory
  const std::vector<float>* inc = &inc_copy;
  DecodeRow full = more;
  full.slot = slots.value()[1];
  full.cached = 0;
  auto all = net.decode({full});
  ASSERT_TRUE(all.ok());
  double diff = 0;
  for (std::size_t i = 0; i < inc->size(); ++i) diff = std::max(diff, std::abs(double((*inc)[i]) - (*all)[i]));
  EXPECT_LT(diff, 1e-4);
  net.release_slots(slots.value());
}

}  // namespace
}  // namespace fathom::models::whisper
