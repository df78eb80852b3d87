// The audio_llm example plugin (examples/audio_llm): a custom audio-LLM layout that reuses fathom's SenseVoice
// encoder, adaptor and decoder-LLM through the plugin API. The FunASR-Nano fixture rewritten into that layout
// must give transformers' greedy tokens for every reference case, be described by `fathom inspect`'s hook, and
// name what is missing when a piece is taken away.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "formats/json_file.h"
#include "models/plugin_loader.h"
#include "support/decoder_fixture.h"
#include "support/files.h"
#include "support/paths.h"

#ifdef FATHOM_AUDIO_LLM_PLUGIN
namespace fathom::models {
namespace {

using fathom::testing::fixture;
namespace fs = std::filesystem;

constexpr const char* kFixture = "funasr-nano-random-a";

// The FunASR-Nano fixture in the ExampleAudioLlm layout: one directory, the decoder's config as text_config.
struct ExampleDir {
  fs::path dir;
  ExampleDir() {
    char tmpl[] = "/tmp/fathom-audio-llm-XXXXXX";
    dir = fs::path(mkdtemp(tmpl)) / "model";
    const auto src = fixture(std::string("models/") + kFixture);
    fs::create_directories(dir);
    for (const char* f : {"model.safetensors", "am.mvn"}) fs::copy_file(src / f, dir / f);
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"})
      fs::copy_file(src / "Qwen3-tiny" / f, dir / f);
    const auto nano = fathom::testing::read_json(src / "config.json");
    nlohmann::json audio = {{"num_mel_bins", nano["frontend_conf"]["n_mels"]},
                            {"lfr_m", nano["frontend_conf"]["lfr_m"]},
                            {"lfr_n", nano["frontend_conf"]["lfr_n"]},
                            {"cmvn_file", "am.mvn"},
                            {"encoder", nano["audio_encoder_conf"]}};
    write("config.json", {{"architectures", {"ExampleAudioLlm"}},
                          {"model_type", "example_audio_llm"},
                          {"audio_config", audio},
                          {"adaptor_config", nano["audio_adaptor_conf"]},
                          {"text_config", fathom::testing::read_json(src / "Qwen3-tiny" / "config.json")},
                          {"audio_token", "<|AUDIO|>"}});
  }
  ~ExampleDir() { fs::remove_all(dir.parent_path()); }
  nlohmann::json read(const std::string& rel) const { return fathom::testing::read_json(dir / rel); }
  void write(const std::string& rel, const nlohmann::json& j) const { std::ofstream(dir / rel) << j.dump(); }
};

struct Plugin {
  Registry registry;
  LoadedPlugin plugin;
};

Plugin& plugin() {
  static Plugin* p = [] {
    auto* p = new Plugin();
    auto loaded = load_plugin(FATHOM_AUDIO_LLM_PLUGIN, p->registry);
    if (!loaded.ok()) throw std::runtime_error(loaded.error().message);
    p->plugin = loaded.value();
    return p;
  }();
  return *p;
}

TEST(AudioLlmPlugin, RegistersATranscriptionArchitectureFromThePlugin) {
  ASSERT_EQ(plugin().registry.architectures().size(), 1u);
  const Architecture* a = plugin().registry.architectures()[0].get();
  EXPECT_EQ(a->info.hf_architectures, std::vector<std::string>{"ExampleAudioLlm"});
  EXPECT_EQ(a->info.tasks, std::vector<Task>{Task::kTranscribe});
  EXPECT_EQ(a->info.source, fs::absolute(FATHOM_AUDIO_LLM_PLUGIN).lexically_normal().string());
  EXPECT_TRUE(a->inspect);
}

TEST(AudioLlmPlugin, GreedyTokensEqualTransformersForEveryCase) {
  ExampleDir example;
  LoadOptions options;
  options.device = Device::cpu();
  auto m = plugin().registry.load(example.dir, options);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m.value()->architecture(), "ExampleAudioLlm");
  SpeechToText* stt = m.value()->as_speech_to_text();
  ASSERT_NE(stt, nullptr);
  EXPECT_EQ(stt->languages(), (std::vector<std::string>{"en", "ja", "zh"}));
  const auto ref = fathom::testing::read_json(fixture(std::string("models/") + kFixture + ".reference.json"));
  int compared = 0;
  std::vector<std::unique_ptr<SpeechJob>> jobs;
  std::vector<SpeechJob*> raw;
  std::vector<std::vector<int32_t>> want;
  for (const auto& [key, cs] : ref["generate"]["cases"].items()) {
    auto job = stt->start(fathom::testing::audiollm_clip_samples(ref["clips"][cs["clip"].get<std::string>()]),
                          fathom::testing::audiollm_case_options(key, cs));
    ASSERT_TRUE(job.ok()) << key << ": " << job.error().message;
    raw.push_back(job.value().get());
    jobs.push_back(std::move(job).value());
    want.push_back(cs["greedy_tokens"].get<std::vector<int32_t>>());
  }
  // All cases at once: they run batched through the decoder.
  for (int i = 0; i < 100000; ++i) {
    bool all = true;
    for (auto* j : raw) all = all && j->done();
    if (all) break;
    stt->step(raw);
  }
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    ASSERT_TRUE(jobs[i]->done());
    auto r = jobs[i]->result();
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->tokens, want[i]) << "case " << i;
    ++compared;
  }
  EXPECT_GE(compared, 3);
}

Result<std::vector<std::pair<std::string, std::string>>> inspect(const fs::path& dir) {
  auto match = plugin().registry.match(dir);
  if (!match.ok()) return match.error();
  return match->architecture->inspect(dir, match->config);
}

TEST(AudioLlmPlugin, InspectDescribesTheLayoutAndNamesWhatIsMissing) {
  {
    ExampleDir example;
    auto rows = inspect(example.dir);
    ASSERT_TRUE(rows.ok()) << rows.error().message;
    std::map<std::string, std::string> by_label(rows->begin(), rows->end());
    for (const char* label : {"encoder", "adaptor", "decoder", "placeholder", "prompt"}) EXPECT_TRUE(by_label.count(label)) << label;
    EXPECT_EQ(by_label["decoder"].rfind("Qwen3ForCausalLM: ", 0), 0u) << by_label["decoder"];  // no subdirectory
  }
  struct Case {
    const char* what;
    void (*break_it)(const ExampleDir&);
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"text_config", [](const ExampleDir& e) { auto j = e.read("config.json"); j.erase("text_config"); e.write("config.json", j); },
       "missing object 'text_config'"},
      {"encoder", [](const ExampleDir& e) { auto j = e.read("config.json"); j["audio_config"].erase("encoder"); e.write("config.json", j); },
       "missing object 'audio_config.encoder'"},
      {"audio token", [](const ExampleDir& e) { auto j = e.read("config.json"); j["audio_token"] = "<|SPEECH|>"; e.write("config.json", j); },
       "has no token '<|SPEECH|>'"},
      {"chat template",
       [](const ExampleDir& e) { auto j = e.read("tokenizer_config.json"); j.erase("chat_template"); e.write("tokenizer_config.json", j); },
       "has no chat_template"},
      {"weight",
       [](const ExampleDir& e) { auto j = e.read("config.json"); j["text_config"]["num_hidden_layers"] = 3; e.write("config.json", j); },
       "tensor 'llm.model.layers.2.self_attn.q_proj.weight' is missing (the decoder)"},
  };
  for (const auto& cs : cases) {
    ExampleDir example;
    cs.break_it(example);
    auto rows = inspect(example.dir);
    ASSERT_FALSE(rows.ok()) << cs.what;
    EXPECT_NE(rows.error().message.find(cs.expect), std::string::npos) << cs.what << ": " << rows.error().message;
    LoadOptions options;
    options.device = Device::cpu();
    auto m = plugin().registry.load(example.dir, options);
    ASSERT_FALSE(m.ok()) << cs.what;
    EXPECT_EQ(m.error().message, rows.error().message) << cs.what;
  }
}

}  // namespace
}  // namespace fathom::models
#endif  // FATHOM_AUDIO_LLM_PLUGIN
