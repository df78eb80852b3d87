#include "models/whisper/config.h"

#include <algorithm>
#include <cctype>
#include <fstream>

#include "models/whisper/languages.h"

namespace fathom::models::whisper {
namespace {

using nlohmann::json;

Error bad(const std::string& origin, const std::string& key, const std::string& what) {
  return make_error(ErrorCode::kLoadFailed, origin + ": `" + key + "` " + what);
}

// Reads an integer key; `required` makes absence an error, otherwise `out` keeps its default.
Status get_int(const json& j, const std::string& origin, const char* key, int& out, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return bad(origin, key, "is missing");
    return Status::Ok();
  }
  if (!it->is_number_integer()) return bad(origin, key, "must be an integer");
  out = it->get<int>();
  return Status::Ok();
}

Status get_positive(const json& j, const std::string& origin, const char* key, int& out) {
  FATHOM_TRY(get_int(j, origin, key, out, true));
  if (out <= 0) return bad(origin, key, "must be positive, got " + std::to_string(out));
  return Status::Ok();
}

Result<std::vector<int>> get_id_list(const json& j, const std::string& origin, const char* key) {
  std::vector<int> ids;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return ids;
  if (!it->is_array()) return bad(origin, key, "must be a list of token ids");
  for (const auto& v : *it) {
    if (!v.is_number_integer()) return bad(origin, key, "must be a list of token ids");
    ids.push_back(v.get<int>());
  }
  return ids;
}

Result<std::map<std::string, int>> get_token_map(const json& j, const std::string& origin, const char* key,
                                                 bool strip_brackets) {
  std::map<std::string, int> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_object()) return bad(origin, key, "must be an object of token -> id");
  for (const auto& [k, v] : it->items()) {
    if (!v.is_number_integer()) return bad(origin, std::string(key) + "." + k, "must be a token id");
    std::string name = k;
    if (strip_brackets && name.size() > 4 && name.rfind("<|", 0) == 0 && name.compare(name.size() - 2, 2, "|>") == 0)
      name = name.substr(2, name.size() - 4);
    out[name] = v.get<int>();
  }
  return out;
}

}  // namespace

std::optional<int> GenerationConfig::language_token(const std::string& code) const {
  auto it = lang_to_id.find(code);
  if (it == lang_to_id.end()) return std::nullopt;
  return it->second;
}

std::string GenerationConfig::language_code(int token) const {
  for (const auto& [code, id] : lang_to_id)
    if (id == token) return code;
  return {};
}

Result<WhisperConfig> parse_whisper_config(const json& j, const std::string& origin) {
  if (!j.is_object()) return make_error(ErrorCode::kLoadFailed, origin + ": not a JSON object");
  WhisperConfig c;
  FATHOM_TRY(get_positive(j, origin, "d_model", c.d_model));
  FATHOM_TRY(get_positive(j, origin, "encoder_layers", c.encoder_layers));
  FATHOM_TRY(get_positive(j, origin, "decoder_layers", c.decoder_layers));
  FATHOM_TRY(get_positive(j, origin, "encoder_attention_heads", c.encoder_attention_heads));
  FATHOM_TRY(get_positive(j, origin, "decoder_attention_heads", c.decoder_attention_heads));
  FATHOM_TRY(get_positive(j, origin, "encoder_ffn_dim", c.encoder_ffn_dim));
  FATHOM_TRY(get_positive(j, origin, "decoder_ffn_dim", c.decoder_ffn_dim));
  FATHOM_TRY(get_positive(j, origin, "num_mel_bins", c.num_mel_bins));
  FATHOM_TRY(get_positive(j, origin, "max_source_positions", c.max_source_positions));
  FATHOM_TRY(get_positive(j, origin, "max_target_positions", c.max_target_positions));
  FATHOM_TRY(get_positive(j, origin, "vocab_size", c.vocab_size));
  FATHOM_TRY(get_int(j, origin, "decoder_start_token_id", c.decoder_start_token_id, false));
  FATHOM_TRY(get_int(j, origin, "eos_token_id", c.eos_token_id, false));
  if (c.d_model % c.encoder_attention_heads != 0)
    return bad(origin, "encoder_attention_heads", "must divide d_model (" + std::to_string(c.d_model) + ")");
  if (c.d_model % c.decoder_attention_heads != 0)
    return bad(origin, "decoder_attention_heads", "must divide d_model (" + std::to_string(c.d_model) + ")");
  if (auto it = j.find("activation_function"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return bad(origin, "activation_function", "must be a string");
    c.activation_function = it->get<std::string>();
  }
  if (c.activation_function != "gelu" && c.activation_function != "gelu_new" &&
      c.activation_function != "gelu_pytorch_tanh" && c.activation_function != "gelu_fast")
    return bad(origin, "activation_function",
               "= \"" + c.activation_function + "\" is not supported (gelu, gelu_new, gelu_pytorch_tanh)");
  if (auto it = j.find("scale_embedding"); it != j.end() && it->is_boolean()) c.scale_embedding = it->get<bool>();
  for (const char* key : {"dtype", "torch_dtype"}) {
    if (auto it = j.find(key); it != j.end() && it->is_string()) {
      c.dtype = it->get<std::string>();
      break;
    }
  }
  return c;
}

Result<GenerationConfig> parse_generation_config(const json& j, const std::string& origin) {
  if (!j.is_object()) return make_error(ErrorCode::kLoadFailed, origin + ": not a JSON object");
  GenerationConfig g;
  FATHOM_TRY(get_int(j, origin, "decoder_start_token_id", g.decoder_start_token_id, false));
  FATHOM_TRY(get_int(j, origin, "eos_token_id", g.eos_token_id, false));
  g.pad_token_id = g.eos_token_id;
  FATHOM_TRY(get_int(j, origin, "pad_token_id", g.pad_token_id, false));
  FATHOM_TRY(get_int(j, origin, "no_timestamps_token_id", g.no_timestamps_token_id, false));
  FATHOM_TRY(get_int(j, origin, "max_length", g.max_length, false));
  int v = -1;
  FATHOM_TRY(get_int(j, origin, "prev_sot_token_id", v, false));
  if (v >= 0) g.prev_sot_token_id = v;
  v = -1;
  FATHOM_TRY(get_int(j, origin, "max_initial_timestamp_index", v, false));
  if (v >= 0) g.max_initial_timestamp_index = v;
  FATHOM_ASSIGN_OR_RETURN(g.suppress_tokens, get_id_list(j, origin, "suppress_tokens"));
  FATHOM_ASSIGN_OR_RETURN(g.begin_suppress_tokens, get_id_list(j, origin, "begin_suppress_tokens"));
  FATHOM_ASSIGN_OR_RETURN(g.lang_to_id, get_token_map(j, origin, "lang_to_id", true));
  FATHOM_ASSIGN_OR_RETURN(g.task_to_id, get_token_map(j, origin, "task_to_id", false));
  if (auto it = j.find("is_multilingual"); it != j.end() && it->is_boolean()) g.is_multilingual = it->get<bool>();
  if (auto it = j.find("forced_decoder_ids"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return bad(origin, "forced_decoder_ids", "must be a list of [position, id] pairs");
    for (const auto& p : *it) {
      if (!p.is_array() || p.size() != 2 || !p[0].is_number_integer() ||
          !(p[1].is_null() || p[1].is_number_integer()))
        return bad(origin, "forced_decoder_ids", "must be a list of [position, id|null] pairs");
      std::optional<int> id;
      if (!p[1].is_null()) id = p[1].get<int>();
      g.forced_decoder_ids.emplace_back(p[0].get<int>(), id);
    }
  }
  if (g.is_multilingual && g.lang_to_id.empty())
    return bad(origin, "lang_to_id", "is missing although is_multilingual is true");
  if (g.is_multilingual && (!g.task_to_id.count("transcribe") || !g.task_to_id.count("translate")))
    return bad(origin, "task_to_id", "must map both \"transcribe\" and \"translate\"");
  return g;
}

Result<GenerationConfig> load_generation_config(const std::filesystem::path& dir, const WhisperConfig& config) {
  auto path = dir / "generation_config.json";
  std::ifstream in(path);
  if (!in) {
    GenerationConfig g;
    g.decoder_start_token_id = config.decoder_start_token_id;
    g.eos_token_id = g.pad_token_id = config.eos_token_id;
    return g;
  }
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded()) return make_error(ErrorCode::kLoadFailed, path.string() + ": invalid JSON");
  return parse_generation_config(j, path.string());
}

Result<std::string> normalize_language(const GenerationConfig& gen, const std::string& language) {
  std::string s = language;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s.size() > 4 && s.rfind("<|", 0) == 0 && s.compare(s.size() - 2, 2, "|>") == 0) s = s.substr(2, s.size() - 4);
  if (!gen.lang_to_id.count(s)) {
    auto code = language_code_of_name(s);
    if (!code.empty() && gen.lang_to_id.count(std::string(code))) s = std::string(code);
  }
  if (!gen.lang_to_id.count(s)) {
    if (gen.lang_to_id.empty())
      return make_error(ErrorCode::kInvalidArgument,
                        "this model is English-only; `language` \"" + language + "\" cannot be chosen", "language");
    std::string list;
    for (const auto& [code, id] : gen.lang_to_id) list += (list.empty() ? "" : ", ") + code;
    return make_error(ErrorCode::kInvalidArgument,
                      "unsupported language \"" + language + "\"; this model accepts ISO-639-1 codes: " + list,
                      "language");
  }
  return s;
}

}  // namespace fathom::models::whisper
