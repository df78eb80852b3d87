// Whisper parity on checkpoints of many shapes (tests/fixtures/models/whisper-unseen, made by
// scripts/fixtures/make_whisper_unseen.py; more with FATHOM_WHISPER_UNSEEN_DIRS, see
// support/whisper_unseen.h): 80 / 128 mel bins, f32 / f16 / bf16 weights, head dims 4 ... 24 that are not
// all powers of two, independent encoder / decoder head and layer counts, full and partial lang_to_id
// sets, init_std up to 1.0, randomised or default LayerNorms. On the CPU (f32 from the stored values),
// stage by stage against transformers in f32: the log-mel, the encoder output, the raw logits after each
// forced prompt and the language log-probs at <|startoftranscript|>, then greedy generate() token for
// token (transcribe en / de, translate fr, language detection, timestamps; jfk.wav and its first 4 s),
// with avg_logprob and no_speech_prob where the reference computed them over the same tokens; the same
// cases batched together.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include <nlohmann/json.hpp>

#include "formats/mel/log_mel.h"
#include "models/whisper/decoding.h"
#include "models/whisper/whisper_model.h"
#include "support/files.h"
#include "support/whisper_inputs.h"
#include "support/whisper_unseen.h"

namespace fathom::models::whisper {
namespace {

using nlohmann::json;
using fathom::testing::UnseenWhisper;

struct Loaded {
  std::unique_ptr<WhisperModel> model;
  json reference;
};

Loaded load(const UnseenWhisper& c) {
  Loaded l;
  l.reference = fathom::testing::unseen_reference(c);
  const auto dir = fathom::testing::assemble_unseen_whisper(c);
  if (dir.empty()) return l;
  auto m = WhisperModel::load(dir, fathom::testing::read_json(dir / "config.json"), LoadOptions{}, whisper_model_info());
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  if (m.ok()) l.model = std::move(m).value();
  return l;
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, static_cast<double>(std::abs(x)));
  return m;
}

// max |a - b| over the common length (sizes must match).
double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    m = std::max(m, std::abs(static_cast<double>(a[i]) - b[i]));
  return m;
}

class WhisperUnseen : public ::testing::TestWithParam<UnseenWhisper> {};

TEST_P(WhisperUnseen, LogMelMatchesFeatureExtractor) {
  const json ref = fathom::testing::unseen_reference(GetParam());
  const int n_mels = ref["n_mels"].get<int>();
  for (const auto& [clip, c] : ref["clips"].items()) {
    SCOPED_TRACE(clip);
    auto in = fathom::testing::jfk_clip(n_mels, c["samples"].get<std::size_t>());
    ASSERT_EQ(in.mel.size(), static_cast<std::size_t>(n_mels) * 3000);
    const auto at = [&](int m, int t) { return static_cast<double>(in.mel[static_cast<std::size_t>(m) * 3000 + t]); };
    for (int t = 0; t < 2; ++t)
      for (int m = 0; m < n_mels; ++m)
        ASSERT_NEAR(at(m, t), c["mel_first_frames"][t][m].get<double>(), 1e-4) << "frame " << t << " bin " << m;
    for (int m = 0; m < n_mels; ++m) {
      double s = 0;
      for (int t = 0; t < 3000; ++t) s += at(m, t);
      ASSERT_NEAR(s, c["mel_bin_sums"][m].get<double>(), 1e-2) << "bin " << m;
    }
    for (int t = 0; t < 3000; ++t) {
      double s = 0;
      for (int m = 0; m < n_mels; ++m) s += at(m, t);
      ASSERT_NEAR(s, c["mel_frame_sums"][t].get<double>(), 3e-3) << "frame " << t;
    }
    if (clip == "jfk") {
      auto dump = fathom::testing::unseen_dump(GetParam(), "jfk.mel.f32");
      if (!dump.empty()) EXPECT_LT(max_diff(in.mel, dump), 1e-4);
    }
  }
}

TEST_P(WhisperUnseen, EncoderMatchesTransformers) {
  Loaded l = load(GetParam());
  ASSERT_TRUE(l.model);
  const int n_mels = l.model->config().num_mel_bins;
  ASSERT_EQ(n_mels, l.reference["n_mels"].get<int>());
  for (const auto& [clip, c] : l.reference["clips"].items()) {
    SCOPED_TRACE(clip);
    auto in = fathom::testing::jfk_clip(n_mels, c["samples"].get<std::size_t>());
    std::vector<std::span<const float>> windows{std::span<const float>(in.mel)};
    auto enc = l.model->network().encoder_states(windows);
    ASSERT_TRUE(enc.ok()) << enc.error().message;
    const auto& x = enc.value();
    ASSERT_EQ(x.size(), static_cast<std::size_t>(1500) * l.model->config().d_model);
    for (int i = 0; i < 8 && i < l.model->config().d_model; ++i)
      EXPECT_NEAR(x[static_cast<std::size_t>(i)], c["encoder_out_frame0_first8"][i].get<double>(), 1e-4) << "dim " << i;
    double abs_sum = 0;
    for (float v : x) abs_sum += std::abs(static_cast<double>(v));
    const double want = c["encoder_out_abs_sum"].get<double>();
    EXPECT_NEAR(abs_sum, want, 1e-5 * want);
    if (clip == "jfk") {
      auto dump = fathom::testing::unseen_dump(GetParam(), "jfk.encoder.f32");
      if (!dump.empty()) EXPECT_LT(max_diff(x, dump), 1e-4 * std::max(1.0, max_abs(dump)));
    }
  }
}

TEST_P(WhisperUnseen, FirstStepLogitsAndLanguageLogProbs) {
  Loaded l = load(GetParam());
  ASSERT_TRUE(l.model);
  const auto& gen = l.model->speech().generation_config();
  const int n_mels = l.model->config().num_mel_bins;
  std::vector<int> langs;
  for (const auto& [code, id] : gen.lang_to_id) langs.push_back(id);
  std::sort(langs.begin(), langs.end());
  ASSERT_EQ(langs.size(), l.reference["clips"]["jfk"]["language_logprobs"].size()) << "lang_to_id";
  for (const auto& [clip, c] : l.reference["clips"].items()) {
    SCOPED_TRACE(clip);
    auto in = fathom::testing::jfk_clip(n_mels, c["samples"].get<std::size_t>());
    // <|startoftranscript|>: the language log-probs (log-softmax over lang_to_id only).
    auto sot = fathom::testing::whisper_prompt_logits(*l.model, in.mel, {gen.decoder_start_token_id});
    ASSERT_EQ(sot.size(), static_cast<std::size_t>(l.model->network().vocab_size()));
    if (clip == "jfk") {
      auto dump = fathom::testing::unseen_dump(GetParam(), "jfk.sot-logits.f32");
      if (!dump.empty()) EXPECT_LT(max_diff(sot, dump), 1e-4 * std::max(1.0, max_abs(dump)));
    }
    auto lp = subset_log_softmax(sot, langs);
    std::map<int, double> ours(lp.begin(), lp.end());
    const json& want = c["language_logprobs"];
    for (const auto& e : want)
      EXPECT_NEAR(ours[e[0].get<int>()], e[1].get<double>(), 1e-4) << "language token " << e[0];
    if (want.size() < 2 || want[0][1].get<double>() - want[1][1].get<double>() > 1e-4)
      EXPECT_EQ(lp[0].first, c["language_best_token"].get<int>());
    EXPECT_EQ(c["language_best_token"].get<int>(), c.value("detect_language_token", -1)) << "reference detect_language()";
    // The raw logits after every case's forced prompt: the top 10 of the first generated position.
    for (const auto& [key, g] : c["generate"].items()) {
      if (!g.contains("first_step_raw_top10")) continue;
      SCOPED_TRACE(key);
      auto logits = fathom::testing::whisper_prompt_logits(*l.model, in.mel, g["prompt"].get<std::vector<int32_t>>());
      ASSERT_EQ(logits.size(), sot.size());
      for (const auto& e : g["first_step_raw_top10"])
        EXPECT_NEAR(logits[e[0].get<std::size_t>()], e[1].get<double>(), 1e-4 * std::max(1.0, std::abs(e[1].get<double>())))
            << "token " << e[0];
    }
  }
}

TEST_P(WhisperUnseen, GenerateTokensMatchTransformers) {
  Loaded l = load(GetParam());
  ASSERT_TRUE(l.model);
  const auto& gen = l.model->speech().generation_config();
  const int max_new = l.reference["max_new_tokens"].get<int>();
  const int n_mels = l.model->config().num_mel_bins;
  int cases = 0;
  for (const auto& [clip, c] : l.reference["clips"].items()) {
    auto in = fathom::testing::jfk_clip(n_mels, c["samples"].get<std::size_t>());
    for (const auto& [key, g] : c["generate"].items()) {
      ASSERT_TRUE(g.contains("tokens")) << clip << " " << key << ": " << g.value("error", "");
      SCOPED_TRACE(clip + " " + key);
      ++cases;
      const SpeechOptions o = fathom::testing::speech_options_of(g["kwargs"], max_new);
      auto r = l.model->speech().transcribe(in.mel, 3000, in.duration, o);
      ASSERT_TRUE(r.ok()) << r.error().message;
      const auto want = g["tokens"].get<std::vector<int32_t>>();
      EXPECT_EQ(r->tokens, want);
      if (!g["kwargs"].contains("language"))
        EXPECT_EQ(gen.language_token(r->language).value_or(-1), c["detect_language_token"].get<int>())
            << "detected " << r->language;
      // Scores where the reference computed them over the tokens of one window (no timestamp tokens, so
      // generate() did not seek inside the window).
      const bool one_window = !o.timestamps && static_cast<int>(want.size()) <= max_new &&
                              std::none_of(want.begin(), want.end(), [&](int t) { return t >= gen.timestamp_begin(); });
      if (one_window && g.contains("avg_logprob") && !r->segments.empty()) {
        EXPECT_NEAR(r->segments[0].avg_logprob, g["avg_logprob"].get<double>(), 1e-4);
        const double ns = g["no_speech_prob"].get<double>();
        EXPECT_NEAR(r->segments[0].no_speech_prob, ns, 1e-3 * ns + 1e-9);
      }
    }
  }
  EXPECT_EQ(cases, 7);  // 5 settings on jfk.wav, 2 on its first 4 s
}

// Every case of both clips as jobs stepped together (one encoder batch of several windows, decoder rows
// of different lengths and phases in one call) gives the reference tokens.
TEST_P(WhisperUnseen, BatchedJobsMatchTransformers) {
  Loaded l = load(GetParam());
  ASSERT_TRUE(l.model);
  const int max_new = l.reference["max_new_tokens"].get<int>();
  const int n_mels = l.model->config().num_mel_bins;
  WhisperSpeech& speech = l.model->speech();
  std::vector<std::unique_ptr<SpeechJob>> jobs;
  std::vector<std::vector<int32_t>> expected;
  std::vector<std::string> names;
  for (const auto& [clip, c] : l.reference["clips"].items()) {
    auto in = fathom::testing::jfk_clip(n_mels, c["samples"].get<std::size_t>());
    for (const auto& [key, g] : c["generate"].items()) {
      auto j = speech.start_mel(in.mel, 3000, in.duration, fathom::testing::speech_options_of(g["kwargs"], max_new));
      ASSERT_TRUE(j.ok()) << j.error().message;
      jobs.push_back(std::move(j).value());
      expected.push_back(g["tokens"].get<std::vector<int32_t>>());
      names.push_back(clip + " " + key);
    }
  }
  std::vector<SpeechJob*> ptrs;
  for (auto& j : jobs) ptrs.push_back(j.get());
  for (int guard = 0; guard < 100000 && !std::all_of(ptrs.begin(), ptrs.end(), [](SpeechJob* j) { return j->done(); });
       ++guard)
    speech.step(ptrs);
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    ASSERT_TRUE(jobs[i]->done()) << names[i];
    auto r = jobs[i]->result();
    ASSERT_TRUE(r.ok()) << names[i] << ": " << r.error().message;
    EXPECT_EQ(r->tokens, expected[i]) << names[i];
  }
  EXPECT_EQ(l.model->network().free_slots(), l.model->network().slot_count());
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, WhisperUnseen, ::testing::ValuesIn(fathom::testing::unseen_whisper_checkpoints()),
                         [](const auto& info) { return fathom::testing::unseen_name(info.param); });

}  // namespace
}  // namespace fathom::models::whisper
