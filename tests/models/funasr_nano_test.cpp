// The FunASR-Nano audio-LLM model end to end on the fixtures (scripts/fixtures/make_audiollm.py): the Kaldi
// fbank front end against FunASR's WavFrontend dumps, then the registry-loaded model turning 16 kHz samples into
// transformers' greedy tokens for every reference case (default prompt, a selected language, a context prompt),
// alone and batched; long audio cut into windows; refused options; cancellation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "formats/audio/audio.h"
#include "formats/fbank/kaldi_cmvn.h"
#include "formats/fbank/kaldi_fbank.h"
#include "formats/json_file.h"
#include "models/audiollm/funasr_nano_config.h"
#include "models/audiollm/funasr_nano_parts.h"
#include "models/registry.h"
#include "support/decoder_fixture.h"
#include "support/files.h"
#include "support/paths.h"

namespace fathom::models::audiollm {
namespace {

using fathom::testing::fixture;
using fathom::testing::audiollm_case_options;
using fathom::testing::audiollm_clip_samples;

nlohmann::json reference(const std::string& name) {
  return fathom::testing::read_json(fixture("models/" + name + ".reference.json"));
}

std::vector<float> dump(const nlohmann::json& entry) {
  auto raw = fathom::testing::read_bytes(fixture("models/" + entry["file"].get<std::string>()));
  std::vector<float> v(raw.size() / 4);
  std::memcpy(v.data(), raw.data(), v.size() * 4);
  return v;
}

double max_abs_diff(const std::vector<float>& got, const std::vector<float>& ref) {
  EXPECT_EQ(got.size(), ref.size());
  double m = 0;
  for (std::size_t i = 0; i < std::min(got.size(), ref.size()); ++i) m = std::max(m, std::fabs(double(got[i]) - ref[i]));
  return m;
}

TEST(FunAsrNanoFrontend, FbankLfrAndCmvnMatchWavFrontend) {
  for (const char* name : {"funasr-nano-random-a", "funasr-nano-random-b"}) {
    const auto dir = fixture(std::string("models/") + name);
    auto json = formats::read_json_file(dir / "config.json");
    ASSERT_TRUE(json.ok());
    auto cfg = parse_funasr_nano_config(json.value(), dir);
    ASSERT_TRUE(cfg.ok()) << cfg.error().message;
    auto fbank = formats::Fbank::create(cfg->fbank);
    ASSERT_TRUE(fbank.ok()) << fbank.error().message;
    auto cmvn = formats::read_kaldi_cmvn(dir / cfg->cmvn_file);
    ASSERT_TRUE(cmvn.ok()) << cmvn.error().message;
    const auto ref = reference(name);
    int compared = 0;
    for (const auto& [clip, entry] : ref["clips"].items()) {
      // The b model's jfk features are not committed (size); its tones clip and both of a's are.
      if (!std::filesystem::exists(fixture("models/" + entry["fbank"]["file"].get<std::string>())) ||
          !std::filesystem::exists(fixture("models/" + entry["lfr_cmvn"]["file"].get<std::string>())))
        continue;
      ++compared;
      const auto samples = audiollm_clip_samples(entry);
      int frames = 0, rows = 0;
      const auto feats = fbank->compute(samples, &frames);
      EXPECT_EQ(frames, entry["fbank"]["shape"][0].get<int>()) << name << " " << clip;
      const double fb_err = max_abs_diff(feats, dump(entry["fbank"]));
      auto lfr = formats::apply_lfr(feats, frames, cfg->fbank.num_mel_bins, cfg->lfr_m, cfg->lfr_n, &rows);
      formats::apply_cmvn(cmvn.value(), lfr);
      EXPECT_EQ(rows, entry["lfr_cmvn"]["shape"][0].get<int>()) << name << " " << clip;
      const double lc_err = max_abs_diff(lfr, dump(entry["lfr_cmvn"]));
      std::printf("  %s %s: fbank max |diff| %.2e, lfr+cmvn max |diff| %.2e\n", name, clip.c_str(), fb_err, lc_err);
      EXPECT_LT(fb_err, 2e-3) << name << " " << clip;  // log energies of magnitude ~10
      EXPECT_LT(lc_err, 2e-3) << name << " " << clip;
    }
    EXPECT_GE(compared, 1) << name;
  }
}

struct Loaded {
  std::unique_ptr<Model> model;
  SpeechToText* stt = nullptr;
  nlohmann::json reference;
};

Loaded load(const std::string& name) {
  Loaded l;
  l.reference = reference(name);
  LoadOptions options;
  options.device = Device::cpu();
  auto m = Registry::global().load(fixture("models/" + name), options);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  if (!m.ok()) return l;
  l.model = std::move(m).value();
  l.stt = l.model->as_speech_to_text();
  EXPECT_NE(l.stt, nullptr);
  return l;
}

// Steps every job until all are done (bounded, so a stuck job fails the test instead of hanging it).
void run(SpeechToText& stt, const std::vector<SpeechJob*>& jobs) {
  for (int i = 0; i < 100000; ++i) {
    bool all = true;
    for (auto* j : jobs) all = all && j->done();
    if (all) return;
    stt.step(jobs);
  }
  ADD_FAILURE() << "jobs did not finish";
}

TEST(FunAsrNano, RegistryServesItAsSpeechToText) {
  auto match = Registry::global().match(fixture("models/funasr-nano-random-a"));
  ASSERT_TRUE(match.ok()) << match.error().message;
  EXPECT_EQ(match->architecture->info.name, "funasr-nano");
  auto l = load("funasr-nano-random-a");
  ASSERT_TRUE(l.stt);
  // Sorted by code (config.json key order is not kept).
  EXPECT_EQ(l.stt->languages(), (std::vector<std::string>{"en", "ja", "zh"}));
  EXPECT_GT(l.model->memory_bytes(), 0u);
}

TEST(FunAsrNano, SamplesToTokensMatchTransformersForEveryCase) {
  for (const char* name : {"funasr-nano-random-a", "funasr-nano-random-b"}) {
    auto l = load(name);
    ASSERT_TRUE(l.stt);
    for (const auto& [key, cs] : l.reference["generate"]["cases"].items()) {
      const auto samples = audiollm_clip_samples(l.reference["clips"][cs["clip"].get<std::string>()]);
      auto job = l.stt->start(samples, audiollm_case_options(key, cs));
      ASSERT_TRUE(job.ok()) << key << ": " << job.error().message;
      run(*l.stt, {job.value().get()});
      auto r = job.value()->result();
      ASSERT_TRUE(r.ok()) << key << ": " << r.error().message;
      EXPECT_EQ(r->tokens, cs["greedy_tokens"].get<std::vector<int32_t>>()) << name << " " << key;
      EXPECT_EQ(r->text, cs["text"].get<std::string>()) << name << " " << key;
      ASSERT_EQ(r->segments.size(), 1u);
      EXPECT_DOUBLE_EQ(r->segments[0].end, samples.size() / 16000.0);
      EXPECT_EQ(job.value()->text_so_far(), r->text);
      if (key.find("language_en") != std::string::npos) EXPECT_EQ(r->language, "en");
    }
  }
}

TEST(FunAsrNano, BatchedJobsEqualSingleJobs) {
  auto l = load("funasr-nano-random-a");
  ASSERT_TRUE(l.stt);
  std::vector<std::unique_ptr<SpeechJob>> jobs;
  std::vector<SpeechJob*> raw;
  std::vector<std::vector<int32_t>> want;
  for (const auto& [key, cs] : l.reference["generate"]["cases"].items()) {
    const auto samples = audiollm_clip_samples(l.reference["clips"][cs["clip"].get<std::string>()]);
    auto job = l.stt->start(samples, audiollm_case_options(key, cs));
    ASSERT_TRUE(job.ok()) << job.error().message;
    raw.push_back(job.value().get());
    jobs.push_back(std::move(job).value());
    want.push_back(cs["greedy_tokens"].get<std::vector<int32_t>>());
  }
  run(*l.stt, raw);
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    auto r = jobs[i]->result();
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->tokens, want[i]) << "job " << i;
  }
}

TEST(FunAsrNano, ReportsTheLanguageOfTheTranscriptsScript) {
  auto l = load("funasr-nano-random-a");
  ASSERT_TRUE(l.stt);
  // Reference texts: jfk_default is Latin letters, tones_default starts with katakana.
  const auto& cases = l.reference["generate"]["cases"];
  for (const auto& [key, expect] : std::vector<std::pair<std::string, std::string>>{{"jfk_default", "en"},
                                                                                      {"tones_default", "ja"}}) {
    const auto& cs = cases[key];
    auto job = l.stt->start(audiollm_clip_samples(l.reference["clips"][cs["clip"].get<std::string>()]), audiollm_case_options(key, cs));
    ASSERT_TRUE(job.ok());
    run(*l.stt, {job.value().get()});
    auto r = job.value()->result();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->language, expect) << key << ": " << r->text;
  }
}

TEST(FunAsrNano, LongAudioIsCutIntoWindows) {
  auto l = load("funasr-nano-random-a");
  ASSERT_TRUE(l.stt);
  const auto jfk = audiollm_clip_samples(l.reference["clips"]["jfk"]);
  ASSERT_FALSE(jfk.empty());
  auto tiled = [&](double seconds) {
    std::vector<float> s(static_cast<std::size_t>(seconds * 16000));
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = jfk[i % jfk.size()];
    return s;
  };
  SpeechOptions o;
  o.max_new_tokens = 3;
  // 65 s: windows 0-30, 30-60, 60-65. 60.5 s: the half-second tail joins the second window.
  for (const auto& [seconds, ends] : std::vector<std::pair<double, std::vector<double>>>{{65.0, {30, 60, 65}},
                                                                                         {60.5, {30, 60.5}}}) {
    auto job = l.stt->start(tiled(seconds), o);
    ASSERT_TRUE(job.ok()) << job.error().message;
    run(*l.stt, {job.value().get()});
    auto r = job.value()->result();
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->segments.size(), ends.size()) << seconds;
    double start = 0;
    std::size_t tokens = 0;
    for (std::size_t i = 0; i < ends.size(); ++i) {
      EXPECT_DOUBLE_EQ(r->segments[i].start, start);
      EXPECT_DOUBLE_EQ(r->segments[i].end, ends[i]);
      EXPECT_LE(r->segments[i].tokens.size(), 3u);
      tokens += r->segments[i].tokens.size();
      start = ends[i];
    }
    EXPECT_EQ(r->tokens.size(), tokens);
    EXPECT_DOUBLE_EQ(r->duration, seconds);
    EXPECT_DOUBLE_EQ(job.value()->seconds_done(), seconds);
  }
}

TEST(FunAsrNano, RefusesWhatItCannotDo) {
  auto l = load("funasr-nano-random-a");
  ASSERT_TRUE(l.stt);
  const auto samples = audiollm_clip_samples(l.reference["clips"]["tones"]);
  SpeechOptions o;
  o.language = "fr";
  auto bad_language = l.stt->start(samples, o);
  ASSERT_FALSE(bad_language.ok());
  EXPECT_EQ(bad_language.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(bad_language.error().message.find("en, ja, zh"), std::string::npos) << bad_language.error().message;
  o = {};
  o.translate = true;
  auto translate = l.stt->start(samples, o);
  ASSERT_FALSE(translate.ok());
  EXPECT_EQ(translate.error().code, ErrorCode::kUnsupported);
  o = {};
  o.prompt = "say <|AUDIO|> twice";
  auto placeholder = l.stt->start(samples, o);
  ASSERT_FALSE(placeholder.ok());
  EXPECT_EQ(placeholder.error().code, ErrorCode::kInvalidArgument);
  auto too_short = l.stt->start(std::vector<float>(100, 0.1f), {});
  ASSERT_FALSE(too_short.ok());
  EXPECT_EQ(too_short.error().code, ErrorCode::kInvalidArgument);
  o = {};
  o.temperature = -1;
  EXPECT_FALSE(l.stt->start(samples, o).ok());
}

TEST(FunAsrNano, CancelledJobFreesItsRequestAndOthersCarryOn) {
  auto l = load("funasr-nano-random-a");
  ASSERT_TRUE(l.stt);
  const auto& cs = l.reference["generate"]["cases"]["tones_default"];
  const auto samples = audiollm_clip_samples(l.reference["clips"]["tones"]);
  auto a = l.stt->start(samples, audiollm_case_options("tones_default", cs));
  auto b = l.stt->start(samples, audiollm_case_options("tones_default", cs));
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<SpeechJob*> both = {a.value().get(), b.value().get()};
  l.stt->step(both);
  l.stt->step(both);
  l.stt->cancel(a.value().get());
  ASSERT_TRUE(a.value()->done());
  EXPECT_EQ(a.value()->result().error().code, ErrorCode::kUnavailable);
  run(*l.stt, {b.value().get()});
  auto r = b.value()->result();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->tokens, cs["greedy_tokens"].get<std::vector<int32_t>>());
}

// A copy of fixture a in a fresh temporary directory, removed again by the destructor.
struct FixtureCopy {
  std::filesystem::path dir;
  FixtureCopy() {
    char tmpl[] = "/tmp/fathom-nano-XXXXXX";
    dir = std::filesystem::path(mkdtemp(tmpl)) / "model";
    std::filesystem::copy(fixture("models/funasr-nano-random-a"), dir, std::filesystem::copy_options::recursive);
  }
  ~FixtureCopy() { std::filesystem::remove_all(dir.parent_path()); }
  nlohmann::json read(const std::string& rel) const { return fathom::testing::read_json(dir / rel); }
  void write(const std::string& rel, const nlohmann::json& j) const { std::ofstream(dir / rel) << j.dump(); }
};

// What `fathom inspect` reports: the inspect hook's rows, or its error.
Result<std::vector<std::pair<std::string, std::string>>> inspect(const std::filesystem::path& dir) {
  auto match = Registry::global().match(dir);
  if (!match.ok()) return match.error();
  EXPECT_TRUE(match->architecture->inspect);
  return match->architecture->inspect(dir, match->config);
}

TEST(FunAsrNanoInspect, DescribesEveryComponentAndTheRenderedPrompt) {
  auto rows = inspect(fixture("models/funasr-nano-random-a"));
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  std::map<std::string, std::string> by_label(rows->begin(), rows->end());
  for (const char* label : {"frontend", "encoder", "adaptor", "decoder", "placeholder", "languages", "prompt"})
    EXPECT_TRUE(by_label.count(label)) << label;
  const auto ref = reference("funasr-nano-random-a");
  EXPECT_EQ(by_label["prompt"], nlohmann::json(ref["generate"]["cases"]["jfk_default"]["prompt_text"]).dump());
  EXPECT_NE(by_label["placeholder"].find("1203"), std::string::npos);
}

TEST(FunAsrNanoInspect, TensorListIsExactlyTheCheckpoint) {
  const auto dir = fixture("models/funasr-nano-random-a");
  auto parts = resolve_funasr_nano(dir, formats::read_json_file(dir / "config.json").value());
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  auto names = funasr_nano_tensor_names(parts->config, parts->llm);
  std::sort(names.begin(), names.end());
  auto stored = parts->checkpoint.names();
  std::sort(stored.begin(), stored.end());
  EXPECT_EQ(names, stored);  // every stored tensor is read, every read tensor is checked
}

TEST(FunAsrNanoInspect, NamesTheMissingPiece) {
  struct Case {
    const char* what;
    std::function<void(const FixtureCopy&)> break_it;
    const char* expect;  // in the error message
  };
  const std::vector<Case> cases = {
      {"prompt", [](const FixtureCopy& c) { auto j = c.read("config.json"); j.erase("prompt"); c.write("config.json", j); },
       "missing object 'prompt'"},
      {"placeholder token",
       [](const FixtureCopy& c) {
         auto j = c.read("config.json");
         j["prompt"]["placeholder"] = "<|SPEECH|>";
         j["prompt"]["user"] = "<|SPEECH|>";
         j["prompt"].erase("language_user");
         c.write("config.json", j);
       },
       "has no token '<|SPEECH|>'"},
      {"chat template",
       [](const FixtureCopy& c) {
         auto j = c.read("Qwen3-tiny/tokenizer_config.json");
         j.erase("chat_template");
         c.write("Qwen3-tiny/tokenizer_config.json", j);
       },
       "has no chat_template"},
      {"cmvn", [](const FixtureCopy& c) { std::filesystem::remove(c.dir / "am.mvn"); }, "am.mvn"},
      {"decoder config", [](const FixtureCopy& c) { std::filesystem::remove(c.dir / "Qwen3-tiny" / "config.json"); },
       "Qwen3-tiny/config.json"},
      {"weight",
       [](const FixtureCopy& c) {
         auto j = c.read("config.json");
         j["audio_adaptor_conf"]["n_layer"] = 3;  // a block the checkpoint does not hold
         c.write("config.json", j);
       },
       "tensor 'audio_adaptor.blocks.2.self_attn.linear_q.weight' is missing (the audio adaptor)"},
  };
  for (const auto& cs : cases) {
    FixtureCopy copy;
    cs.break_it(copy);
    auto rows = inspect(copy.dir);
    ASSERT_FALSE(rows.ok()) << cs.what;
    EXPECT_NE(rows.error().message.find(cs.expect), std::string::npos) << cs.what << ": " << rows.error().message;
    // The loader refuses it with the same message.
    LoadOptions options;
    auto loaded = Registry::global().load(copy.dir, options);
    ASSERT_FALSE(loaded.ok()) << cs.what;
    EXPECT_NE(loaded.error().message.find(cs.expect), std::string::npos) << cs.what << ": " << loaded.error().message;
  }
}

}  // namespace
}  // namespace fathom::models::audiollm
