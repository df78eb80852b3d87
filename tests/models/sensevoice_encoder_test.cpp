// The SenseVoice-Small encoder (src/models/sensevoice) against the fixture generator's PyTorch encoder
// (scripts/fixtures/make_audiollm.py): from the dumped LFR + CMVN features, the encoder output of the tones
// clip for both fixtures (one shifted FSMN window, one centred) and of jfk for fixture a, alone and packed in
// one batch.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "formats/json_file.h"
#include "formats/safetensors.h"
#include "models/sensevoice/sensevoice_encoder.h"
#include "support/files.h"
#include "support/paths.h"

namespace fathom::models::sensevoice {
namespace {

using fathom::testing::fixture;

std::vector<float> dump(const nlohmann::json& entry) {
  auto raw = fathom::testing::read_bytes(fixture("models/" + entry["file"].get<std::string>()));
  std::vector<float> v(raw.size() / 4);
  std::memcpy(v.data(), raw.data(), v.size() * 4);
  return v;
}

struct Loaded {
  nlohmann::json reference;
  CpuExecContext cpu;
  std::unique_ptr<ops::DeviceRunner> runner;
  std::unique_ptr<SenseVoiceEncoder> encoder;
};

std::unique_ptr<Loaded> load(const std::string& name) {
  auto l = std::make_unique<Loaded>();
  l->reference = fathom::testing::read_json(fixture("models/" + name + ".reference.json"));
  const auto dir = fixture("models/" + name);
  auto config = formats::read_json_file(dir / "config.json");
  EXPECT_TRUE(config.ok());
  if (!config.ok()) return l;
  auto conf = parse_sensevoice_encoder_config(config.value()["audio_encoder_conf"], (dir / "config.json").string());
  EXPECT_TRUE(conf.ok()) << conf.error().message;
  auto ckpt = formats::Checkpoint::open(dir);
  EXPECT_TRUE(ckpt.ok());
  auto runner = ops::DeviceRunner::create(Device::cpu());
  EXPECT_TRUE(runner.ok());
  if (!conf.ok() || !ckpt.ok() || !runner.ok()) return l;
  l->runner = std::move(runner).value();
  auto enc = SenseVoiceEncoder::load(ckpt.value(), "audio_encoder.", conf.value(), l->cpu.ctx(), *l->runner, DType::kF32);
  EXPECT_TRUE(enc.ok()) << enc.error().message;
  if (enc.ok()) l->encoder = std::move(enc).value();
  return l;
}

double max_rel(const std::vector<float>& got, const std::vector<float>& ref) {
  EXPECT_EQ(got.size(), ref.size());
  double m = 0, scale = 0;
  for (float r : ref) scale = std::max(scale, std::fabs(double(r)));
  for (std::size_t i = 0; i < std::min(got.size(), ref.size()); ++i) m = std::max(m, std::fabs(double(got[i]) - ref[i]));
  return m / scale;
}

TEST(SenseVoiceEncoder, MatchesReferenceEncoderOutput) {
  for (const char* name : {"funasr-nano-random-a", "funasr-nano-random-b"}) {
    auto l = load(name);
    ASSERT_TRUE(l->encoder) << name;
    std::vector<const char*> clips = {"tones"};
    if (std::string(name) == "funasr-nano-random-a") clips.push_back("jfk");
    std::vector<std::vector<float>> inputs, refs;
    for (const char* clip : clips) {
      const auto& c = l->reference["clips"][clip];
      inputs.push_back(dump(c["lfr_cmvn"]));
      refs.push_back(dump(c["encoder"]));
      auto out = l->encoder->encode({inputs.back()});
      ASSERT_TRUE(out.ok()) << out.error().message;
      const double err = max_rel(out.value()[0], refs.back());
      std::printf("  %s %s: encoder max |diff| / max |ref| = %.2e\n", name, clip, err);
      EXPECT_LT(err, 1e-4) << name << " " << clip;
    }
    if (inputs.size() > 1) {  // packed together
      auto both = l->encoder->encode({inputs[0], inputs[1]});
      ASSERT_TRUE(both.ok());
      for (std::size_t i = 0; i < inputs.size(); ++i) EXPECT_LT(max_rel(both.value()[i], refs[i]), 1e-4) << name << " packed " << i;
    }
  }
}

TEST(SenseVoiceEncoder, RejectsRaggedFeatures) {
  auto l = load("funasr-nano-random-b");
  ASSERT_TRUE(l->encoder);
  std::vector<float> bad(561, 0.0f);
  auto r = l->encoder->encode({bad});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace fathom::models::sensevoice
