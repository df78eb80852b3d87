// Fuzzes the JSON files of a model directory (what a damaged or hostile model directory reaches):
// config.json (Whisper), generation_config.json, sentence-transformers' modules.json, 1_Pooling/config.json
// and sentence_bert_config.json, tokenizer_config.json, and model.safetensors.index.json (with one real
// tiny shard beside it).
// Input: byte 0 picks the file the rest becomes; the other files are valid defaults.
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "formats/json_file.h"
#include "formats/safetensors.h"
#include "formats/sentence_transformers.h"
#include "fuzz_support.h"
#include "models/whisper/config.h"

namespace {

namespace fs = std::filesystem;
namespace fmt = fathom::formats;
namespace whisper = fathom::models::whisper;

constexpr const char* kModules =
    R"([{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},)"
    R"({"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},)"
    R"({"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}])";
constexpr const char* kPooling = R"({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": true})";
constexpr const char* kWhisperConfig =
    R"({"d_model": 64, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 2,)"
    R"("decoder_attention_heads": 2, "encoder_ffn_dim": 128, "decoder_ffn_dim": 128, "vocab_size": 51865})";

// A valid safetensors file holding "a.weight" (F32 [2]).
std::string tiny_shard() {
  const std::string header = R"({"a.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + std::string(8, '\0');
}

void exercise_json(const nlohmann::json& j, const fs::path& file) {
  (void)fmt::parse_pooling_config(j, file);
  for (const char* key : {"d_model", "vocab_size", "model_max_length", "max_seq_length", "missing"}) {
    (void)fmt::json_int(j, key, file);
    (void)fmt::json_number(j, key, file);
    (void)fmt::json_string(j, key, file);
    (void)fmt::json_bool(j, key, file);
    (void)fmt::json_positive_int(j, key, file);
  }
  auto cfg = whisper::parse_whisper_config(j, file.string());
  auto gen = whisper::parse_generation_config(j, file.string());
  if (gen.ok()) {
    for (const char* lang : {"en", "English", "<|zh|>", "", "xx"}) (void)whisper::normalize_language(*gen, lang);
    (void)gen->language_token("en");
    (void)gen->language_code(gen->timestamp_begin());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fathom::fuzz::ScratchDir scratch;
  fathom::fuzz::Reader in(data, size);
  const int which = in.byte() % 7;
  const std::string_view body = in.rest();

  // The in-memory parsers first, on any input that is JSON.
  auto j = nlohmann::json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) exercise_json(j, "fuzz.json");

  const fs::path& dir = scratch.fresh();
  scratch.write("config.json", which == 0 ? body : kWhisperConfig);
  scratch.write("generation_config.json", which == 1 ? body : "{}");
  scratch.write("modules.json", which == 2 ? body : kModules);
  scratch.write("1_Pooling/config.json", which == 3 ? body : kPooling);
  scratch.write("sentence_bert_config.json", which == 4 ? body : R"({"max_seq_length": 128})");
  scratch.write("tokenizer_config.json", which == 5 ? body : R"({"model_max_length": 512})");
  if (which == 6) {
    scratch.write("model.safetensors.index.json", body);
    scratch.write("model-00001-of-00001.safetensors", tiny_shard());
  } else {
    scratch.write("model.safetensors", tiny_shard());
  }

  (void)fmt::read_json_file(dir / "config.json");
  auto st = fmt::read_sentence_transformers_config(dir);
  auto tok_max = fmt::read_tokenizer_max_length(dir);
  if (st.ok() && tok_max.ok()) {
    const int limit = fmt::resolve_max_input_tokens(st->max_seq_length, *tok_max, 512);
    if (limit < 1 || limit > 512) std::abort();
  }
  whisper::WhisperConfig defaults;
  auto cfg_json = nlohmann::json::parse(which == 0 ? std::string(body) : std::string(kWhisperConfig), nullptr, false);
  if (!cfg_json.is_discarded()) {
    auto cfg = whisper::parse_whisper_config(cfg_json, "config.json");
    (void)whisper::load_generation_config(dir, cfg.ok() ? *cfg : defaults);
  }
  auto ckpt = fmt::Checkpoint::open(dir);
  if (ckpt.ok()) {
    for (const auto& name : ckpt->names()) {
      const auto* info = ckpt->find(name);
      if (!info) std::abort();  // every listed name must resolve
      (void)ckpt->file_of(name);
    }
    (void)ckpt->description();
  }
  return 0;
}
