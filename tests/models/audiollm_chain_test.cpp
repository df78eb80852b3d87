// The FunASR-Nano-style audio-LLM chain on the fixtures (scripts/fixtures/make_audiollm.py): the audio adaptor
// reproduces the dumped adaptor output from the dumped encoder output, and LFR + CMVN features -> SenseVoice
// encoder -> adaptor -> Qwen3 decoder (adaptor rows spliced at <|AUDIO|>) gives the reference greedy tokens.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "formats/json_file.h"
#include "formats/safetensors.h"
#include "models/audiollm/audio_adaptor.h"
#include "models/decoder/generator.h"
#include "models/sensevoice/sensevoice_encoder.h"
#include "support/decoder_fixture.h"
#include "support/files.h"
#include "support/paths.h"

namespace fathom::models::audiollm {
namespace {

using fathom::testing::fixture;

std::vector<float> dump(const nlohmann::json& entry) {
  auto raw = fathom::testing::read_bytes(fixture("models/" + entry["file"].get<std::string>()));
  std::vector<float> v(raw.size() / 4);
  std::memcpy(v.data(), raw.data(), v.size() * 4);
  return v;
}

struct Chain {
  CpuExecContext cpu;
  std::unique_ptr<ops::DeviceRunner> runner;
  std::unique_ptr<sensevoice::SenseVoiceEncoder> encoder;
  std::unique_ptr<AudioAdaptor> adaptor;
};

std::unique_ptr<Chain> load_chain(const std::string& name) {
  auto c = std::make_unique<Chain>();
  const auto dir = fixture("models/" + name);
  auto config = formats::read_json_file(dir / "config.json");
  auto ckpt = formats::Checkpoint::open(dir);
  auto runner = ops::DeviceRunner::create(Device::cpu());
  EXPECT_TRUE(config.ok() && ckpt.ok() && runner.ok());
  if (!config.ok() || !ckpt.ok() || !runner.ok()) return c;
  c->runner = std::move(runner).value();
  auto ec = sensevoice::parse_sensevoice_encoder_config(config.value()["audio_encoder_conf"], name);
  auto ac = parse_audio_adaptor_config(config.value()["audio_adaptor_conf"], name);
  EXPECT_TRUE(ec.ok() && ac.ok());
  if (!ec.ok() || !ac.ok()) return c;
  auto enc = sensevoice::SenseVoiceEncoder::load(ckpt.value(), "audio_encoder.", ec.value(), c->cpu.ctx(), *c->runner, DType::kF32);
  auto ada = AudioAdaptor::load(ckpt.value(), "audio_adaptor.", ac.value(), c->cpu.ctx(), *c->runner, DType::kF32);
  EXPECT_TRUE(enc.ok()) << enc.error().message;
  EXPECT_TRUE(ada.ok()) << ada.error().message;
  if (enc.ok()) c->encoder = std::move(enc).value();
  if (ada.ok()) c->adaptor = std::move(ada).value();
  return c;
}

double max_rel(const std::vector<float>& got, const std::vector<float>& ref) {
  EXPECT_EQ(got.size(), ref.size());
  double m = 0, scale = 0;
  for (float r : ref) scale = std::max(scale, std::fabs(double(r)));
  for (std::size_t i = 0; i < std::min(got.size(), ref.size()); ++i) m = std::max(m, std::fabs(double(got[i]) - ref[i]));
  return m / scale;
}

TEST(AudioAdaptor, MatchesReferenceAdaptorOutput) {
  for (const char* name : {"funasr-nano-random-a", "funasr-nano-random-b"}) {
    auto c = load_chain(name);
    ASSERT_TRUE(c->adaptor);
    const auto ref = fathom::testing::read_json(fixture(std::string("models/") + name + ".reference.json"));
    std::vector<const char*> clips = {"tones"};
    if (std::string(name) == "funasr-nano-random-a") clips.push_back("jfk");
    for (const char* clip : clips) {
      const auto enc = dump(ref["clips"][clip]["encoder"]);
      auto out = c->adaptor->forward({enc});
      ASSERT_TRUE(out.ok()) << out.error().message;
      const double err = max_rel(out.value()[0], dump(ref["clips"][clip]["adaptor"]));
      std::printf("  %s %s: adaptor max |diff| / max |ref| = %.2e\n", name, clip, err);
      EXPECT_LT(err, 1e-4) << name << " " << clip;
    }
  }
}

TEST(AudioLlmChain, FeaturesToTokensMatchTransformers) {
  for (const char* name : {"funasr-nano-random-a", "funasr-nano-random-b"}) {
    auto c = load_chain(name);
    ASSERT_TRUE(c->encoder && c->adaptor);
    auto f = fathom::testing::load_decoder_fixture(name);
    ASSERT_TRUE(f.lm);
    std::vector<const char*> cases = {"tones_default"};
    if (std::string(name) == "funasr-nano-random-a") cases.push_back("jfk_prompt");
    for (const char* key : cases) {
      const auto& cs = f.reference["generate"]["cases"][key];
      const std::string clip = cs["clip"].get<std::string>();
      auto enc = c->encoder->encode({dump(f.reference["clips"][clip]["lfr_cmvn"])});
      ASSERT_TRUE(enc.ok()) << enc.error().message;
      auto ada = c->adaptor->forward({enc.value()[0]});
      ASSERT_TRUE(ada.ok()) << ada.error().message;
      auto prompt = fathom::testing::fixture_prompt(f, key);
      prompt[1].embeddings = ada.value()[0];  // our adaptor output instead of the dump
      decoder::Generator g(*f.lm);
      decoder::GenerationRequest r;
      r.prompt = prompt;
      r.max_completion_tokens = cs["max_new_tokens"].get<int>();
      ASSERT_TRUE(g.submit(std::move(r)).ok());
      std::vector<int32_t> tokens;
      while (!g.idle()) {
        auto ev = g.step();
        ASSERT_TRUE(ev.ok());
        for (const auto& e : ev.value()) tokens.push_back(e.token);
      }
      EXPECT_EQ(tokens, cs["greedy_tokens"].get<std::vector<int32_t>>()) << name << " " << key;
    }
  }
}

}  // namespace
}  // namespace fathom::models::audiollm
