#include "support/decoder_fixture.h"

#include <gtest/gtest.h>

#include <cstring>

#include "formats/audio/audio.h"
#include "formats/json_file.h"
#include "formats/safetensors.h"
#include "support/files.h"
#include "support/paths.h"

namespace fathom::testing {

DecoderFixture load_decoder_fixture(const std::string& name, std::size_t kv_cache_bytes, int block_size, Device device,
                                    DType dtype) {
  DecoderFixture f;
  f.name = name;
  const auto dir = fixture("models/" + name);
  f.reference = read_json(fixture("models/" + name + ".reference.json"));
  const auto llm_dir = dir / "Qwen3-tiny";
  auto json = formats::read_json_file(llm_dir / "config.json");
  EXPECT_TRUE(json.ok()) << json.error().message;
  if (!json.ok()) return f;
  auto config = models::decoder::parse_decoder_config(json.value(), llm_dir / "config.json");
  EXPECT_TRUE(config.ok()) << config.error().message;
  if (!config.ok()) return f;
  EXPECT_TRUE(models::decoder::read_generation_config(llm_dir, config.value()).ok());
  auto ckpt = formats::Checkpoint::open(dir);
  EXPECT_TRUE(ckpt.ok()) << ckpt.error().message;
  if (!ckpt.ok()) return f;
  models::decoder::DecoderLoadOptions options;
  options.kv_cache_bytes = kv_cache_bytes;
  options.kv_block_size = block_size;
  options.device = device;
  options.dtype = dtype;
  auto lm = models::decoder::DecoderLm::load(ckpt.value(), "llm.", config.value(), options);
  EXPECT_TRUE(lm.ok()) << lm.error().message;
  if (lm.ok()) f.lm = std::move(lm).value();
  return f;
}

std::vector<float> fixture_adaptor(const DecoderFixture& f, const std::string& clip) {
  const auto& a = f.reference["clips"][clip]["adaptor"];
  auto raw = read_bytes(fixture("models/" + a["file"].get<std::string>()));
  std::vector<float> out(raw.size() / sizeof(float));
  std::memcpy(out.data(), raw.data(), out.size() * sizeof(float));
  EXPECT_EQ(out.size(), a["shape"][0].get<std::size_t>() * a["shape"][1].get<std::size_t>());
  return out;
}

std::vector<models::decoder::PromptPart> fixture_prompt(const DecoderFixture& f, const std::string& key) {
  const auto& c = f.reference["generate"]["cases"][key];
  const auto ids = c["prompt_ids"].get<std::vector<int32_t>>();
  const std::size_t p = c["placeholder_index"].get<std::size_t>();
  std::vector<models::decoder::PromptPart> parts(3);
  parts[0].ids.assign(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(p));
  parts[1].embeddings = fixture_adaptor(f, c["clip"].get<std::string>());
  parts[2].ids.assign(ids.begin() + static_cast<std::ptrdiff_t>(p) + 1, ids.end());
  return parts;
}

std::vector<float> audiollm_clip_samples(const nlohmann::json& clip) {
  const std::string rel = clip["audio"].get<std::string>();
  const auto path = rel.rfind("whisper/", 0) == 0 ? shared_dir() / "assets" / rel : source_dir() / rel;
  auto audio = formats::decode_audio(read_bytes(path));
  EXPECT_TRUE(audio.ok()) << path << ": " << (audio.ok() ? "" : audio.error().message);
  if (!audio.ok()) return {};
  EXPECT_EQ(audio.value().samples.size(), clip["samples"].get<std::size_t>()) << path;
  return audio.value().samples;
}

models::SpeechOptions audiollm_case_options(const std::string& key, const nlohmann::json& cs) {
  models::SpeechOptions o;
  o.max_new_tokens = cs["max_new_tokens"].get<int>();
  if (key.find("language_en") != std::string::npos) o.language = "en";
  if (key.find("prompt") != std::string::npos) o.prompt = "Kennedy, Americans";
  return o;
}

}  // namespace fathom::testing
