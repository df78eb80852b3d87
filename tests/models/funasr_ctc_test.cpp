// The funasr_ctc example plugin, loaded through the plugin loader, against its PyTorch reference
// (scripts/make_fixtures.py part "funasr-ctc": the same front end and network in explicit torch code).
//
// Tolerances: the reference computes the filterbank in float64 and the network in float32; the plugin
// computes the filterbank in double and the network in float32 with a different summation order
// (blocked GEMMs). Log filterbank values (about 0..25) then agree to ~1e-6 relative, encoder outputs
// (unit scale after LayerNorm) to ~1e-5 absolute; 1e-3 relative / 2e-3 absolute leave ample room while
// still catching any wrong window, bank, pre-emphasis or scaling (those move values by >= 1e-2).
// The CTC logits' smallest top-2 gap in the reference is recorded (logits_min_margin, ~0.08), far above
// the float32 differences, so argmax ids and the decoded text must match exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "diagnostics.h"
#include "formats/audio/audio.h"
#include "formats/tokenizer/tokenizer.h"
#include "models/plugin_loader.h"
#include "support/paths.h"

#ifdef FATHOM_FUNASR_CTC_PLUGIN
namespace fathom::models {
namespace {

struct Loaded {
  Registry registry;
  LoadedPlugin plugin;
  std::unique_ptr<Model> model;
  nlohmann::json ref;
  std::vector<float> samples;
};

Loaded& loaded() {
  static Loaded* l = [] {
    auto* l = new Loaded();
    auto p = load_plugin(FATHOM_FUNASR_CTC_PLUGIN, l->registry);
    if (!p.ok()) throw std::runtime_error(p.error().message);
    l->plugin = p.value();
    LoadOptions options;
    options.device = Device::cpu();
    auto m = l->registry.load(testing::fixture("models/funasr-ctc-random"), options);
    if (!m.ok()) throw std::runtime_error(m.error().message);
    l->model = std::move(m).value();
    std::ifstream f(testing::fixture("models/funasr-ctc-random.reference.json"));
    l->ref = nlohmann::json::parse(f);
    std::ifstream w(testing::shared_dir() / "assets/whisper/jfk.wav", std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(w)), std::istreambuf_iterator<char>());
    auto audio = formats::decode_wav(bytes);
    if (!audio.ok()) throw std::runtime_error(audio.error().message);
    l->samples = audio->samples;
    return l;
  }();
  return *l;
}

funasr_ctc::CtcOutputs run(const std::vector<float>& samples) {
  auto fn = reinterpret_cast<funasr_ctc::RunDiagnosticsFn>(plugin_symbol(loaded().plugin, funasr_ctc::kRunDiagnosticsSymbol));
  if (!fn) throw std::runtime_error("the plugin does not export funasr_ctc_run_diagnostics");
  funasr_ctc::CtcOutputs out;
  Status s = fn(loaded().model.get(), samples, &out);
  if (!s.ok()) throw std::runtime_error(s.error().message);
  return out;
}

TEST(FunAsrCtcPlugin, LoadsAsSpeechToTextWithPluginSource) {
  Model& m = *loaded().model;
  EXPECT_EQ(m.architecture(), "FunASRCTCModel");
  EXPECT_EQ(m.info().source, std::filesystem::absolute(FATHOM_FUNASR_CTC_PLUGIN).lexically_normal().string());
  ASSERT_NE(m.as_speech_to_text(), nullptr);
  EXPECT_EQ(m.as_embedder(), nullptr);
  EXPECT_TRUE(m.as_speech_to_text()->languages().empty());
  EXPECT_GT(m.memory_bytes(), 400000u);  // ~105k float32 parameters
  // Its tokenizer.json carries the CTC vocabulary.
  EXPECT_EQ(m.as_speech_to_text()->tokenizer().vocab_size(), 30);
}

TEST(FunAsrCtcPlugin, FilterbankMatchesReference) {
  const auto& ref = loaded().ref;
  auto out = run(loaded().samples);
  ASSERT_EQ(out.fbank_frames, ref["fbank_shape"][0].get<int>());
  ASSERT_EQ(out.fbank.size(), static_cast<std::size_t>(out.fbank_frames) * ref["fbank_shape"][1].get<int>());
  const int bins = ref["fbank_shape"][1];
  const auto& first = ref["fbank_first_frames"];
  for (std::size_t t = 0; t < first.size(); ++t)
    for (int b = 0; b < bins; ++b) {
      const double want = first[t][b].get<double>();
      EXPECT_NEAR(out.fbank[t * bins + b], want, 1e-3 * std::max(1.0, std::abs(want))) << "frame " << t << " bin " << b;
    }
  const auto& means = ref["fbank_frame_means"];
  for (int t = 0; t < out.fbank_frames; ++t) {
    double m = 0;
    for (int b = 0; b < bins; ++b) m += out.fbank[static_cast<std::size_t>(t) * bins + b];
    m /= bins;
    const double want = means[t].get<double>();
    EXPECT_NEAR(m, want, 1e-3 * std::max(1.0, std::abs(want))) << "frame " << t;
  }
}

TEST(FunAsrCtcPlugin, LfrCmvnEncoderAndLogitsMatchReference) {
  const auto& ref = loaded().ref;
  auto out = run(loaded().samples);
  ASSERT_EQ(out.lfr_frames, ref["lfr_shape"][0].get<int>());
  const int in = ref["lfr_shape"][1];
  // lfr_row_means in the reference are before CMVN; check the row count and CMVN'd values' scale instead.
  ASSERT_EQ(out.lfr.size(), static_cast<std::size_t>(out.lfr_frames) * in);
  const int d = ref["encoder_shape"][1];
  ASSERT_EQ(out.encoder.size(), static_cast<std::size_t>(out.lfr_frames) * d);
  for (int c = 0; c < d; ++c) {
    EXPECT_NEAR(out.encoder[c], ref["encoder_first_row"][c].get<double>(), 2e-3) << "first row, channel " << c;
    EXPECT_NEAR(out.encoder[(out.lfr_frames - 1) * d + c], ref["encoder_last_row"][c].get<double>(), 2e-3)
        << "last row, channel " << c;
  }
  double sum = 0, sq = 0;
  for (float v : out.encoder) sum += v;
  const double mean = sum / out.encoder.size();
  for (float v : out.encoder) sq += (v - mean) * (v - mean);
  EXPECT_NEAR(mean, ref["encoder_mean"].get<double>(), 1e-4);
  EXPECT_NEAR(std::sqrt(sq / (out.encoder.size() - 1)), ref["encoder_std"].get<double>(), 1e-3);
  const auto& rows = ref["logits_first_rows"];
  const int V = static_cast<int>(rows[0].size());
  for (std::size_t t = 0; t < rows.size(); ++t)
    for (int v = 0; v < V; ++v) {
      const double want = rows[t][v].get<double>();
      EXPECT_NEAR(out.logits[t * V + v], want, 2e-3 * std::max(1.0, std::abs(want))) << "frame " << t << " id " << v;
    }
}

TEST(FunAsrCtcPlugin, ArgmaxGreedyIdsAndTextExact) {
  const auto& ref = loaded().ref;
  ASSERT_GT(ref["logits_min_margin"].get<double>(), 0.01);
  auto out = run(loaded().samples);
  EXPECT_EQ(out.argmax, ref["argmax_ids"].get<std::vector<int32_t>>());
  EXPECT_EQ(out.tokens, ref["greedy_ids"].get<std::vector<int32_t>>());
  EXPECT_EQ(out.text, ref["text"].get<std::string>());
}

// Through the SpeechToText interface, as the audio routes use it: several jobs stepped together (one
// packed batch) give the same text as the reference and as each job alone.
TEST(FunAsrCtcPlugin, TranscribesThroughSpeechToTextInOneBatch) {
  SpeechToText* stt = loaded().model->as_speech_to_text();
  ASSERT_NE(stt, nullptr);
  const auto& samples = loaded().samples;
  std::vector<float> prefix(samples.begin(), samples.begin() + 3 * 16000);
  auto a = stt->start(samples, SpeechOptions{});
  auto b = stt->start(prefix, SpeechOptions{});
  auto c = stt->start(std::vector<float>(50, 0.0f), SpeechOptions{});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  stt->step({a->get(), b->get(), c->get()});
  ASSERT_TRUE((*a)->done() && (*b)->done() && (*c)->done());
  auto ra = (*a)->result();
  ASSERT_TRUE(ra.ok()) << ra.error().message;
  EXPECT_EQ(ra->text, loaded().ref["text"].get<std::string>());
  EXPECT_EQ(ra->tokens, loaded().ref["greedy_ids"].get<std::vector<int32_t>>());
  EXPECT_NEAR(ra->duration, 11.0, 1e-9);
  ASSERT_EQ(ra->segments.size(), 1u);
  EXPECT_EQ(ra->segments[0].text, ra->text);
  EXPECT_EQ((*c)->result()->text, "");
  auto alone = stt->start(prefix, SpeechOptions{});
  ASSERT_TRUE(alone.ok());
  stt->step({alone->get()});
  EXPECT_EQ((*alone)->result()->text, (*b)->result()->text);
  EXPECT_EQ((*alone)->result()->tokens, (*b)->result()->tokens);
  EXPECT_FALSE((*b)->result()->text.empty());

  SpeechOptions translate;
  translate.translate = true;
  auto t = stt->start(prefix, translate);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ErrorCode::kUnsupported);
}

TEST(FunAsrCtcPlugin, ShortAndEmptyAudio) {
  // Shorter than one 25 ms frame: no frames, empty text, no failure.
  auto none = run(std::vector<float>(100, 0.1f));
  EXPECT_EQ(none.fbank_frames, 0);
  EXPECT_TRUE(none.text.empty());
  auto empty = run({});
  EXPECT_EQ(empty.lfr_frames, 0);
  // A prefix of the speech gives one LFR row per 6 filterbank frames (rounded up).
  std::vector<float> prefix(loaded().samples.begin(), loaded().samples.begin() + 16000);
  auto p = run(prefix);
  EXPECT_EQ(p.fbank_frames, 1 + (16000 - 400) / 160);
  EXPECT_EQ(p.lfr_frames, (p.fbank_frames + 5) / 6);
}

}  // namespace
}  // namespace fathom::models
#endif
