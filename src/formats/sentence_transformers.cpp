#include "formats/sentence_transformers.h"

#include <algorithm>
#include <vector>

#include "formats/json_file.h"

namespace fathom::formats {
namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
Error unsupported(const std::filesystem::path& file, const std::string& what) {
  return make_error(ErrorCode::kUnsupported, file.string() + ": " + what);
}
}  // namespace

const char* pooling_kind_name(PoolingKind kind) {
  switch (kind) {
    case PoolingKind::kCls: return "cls";
    case PoolingKind::kMean: return "mean";
    case PoolingKind::kMax: return "max";
    case PoolingKind::kLastToken: return "lasttoken";
  }
  return "mean";
}

Result<PoolingKind> parse_pooling_config(const nlohmann::json& config, const std::filesystem::path& file) {
  if (!config.is_object()) return make_error(ErrorCode::kLoadFailed, file.string() + ": expected a JSON object");
  FATHOM_ASSIGN_OR_RETURN(auto mode, json_string(config, "pooling_mode", file));
  if (mode) {
    if (*mode == "mean") return PoolingKind::kMean;
    if (*mode == "cls") return PoolingKind::kCls;
    if (*mode == "max") return PoolingKind::kMax;
    if (*mode == "lasttoken") return PoolingKind::kLastToken;
    return unsupported(file, "pooling_mode '" + *mode + "' is not supported (supported: mean, cls, max, lasttoken)");
  }
  struct Flag {
    const char* key;
    std::optional<PoolingKind> kind;  // nullopt: a mode fathom does not compute
  };
  const Flag flags[] = {{"pooling_mode_cls_token", PoolingKind::kCls},
                        {"pooling_mode_mean_tokens", PoolingKind::kMean},
                        {"pooling_mode_max_tokens", PoolingKind::kMax},
                        {"pooling_mode_lasttoken", PoolingKind::kLastToken},
                        {"pooling_mode_mean_sqrt_len_tokens", std::nullopt},
                        {"pooling_mode_weightedmean_tokens", std::nullopt}};
  std::vector<const Flag*> set;
  for (const auto& f : flags) {
    FATHOM_ASSIGN_OR_RETURN(auto v, json_bool(config, f.key, file));
    if (v && *v) set.push_back(&f);
  }
  if (set.empty()) return PoolingKind::kMean;
  if (set.size() > 1) {
    std::string keys;
    for (const auto* f : set) keys += (keys.empty() ? "" : ", ") + std::string(f->key);
    return unsupported(file, "several pooling modes are set (" + keys + "); fathom supports exactly one");
  }
  if (!set[0]->kind) return unsupported(file, std::string(set[0]->key) + " is not supported (supported: mean, cls, max, lasttoken)");
  return *set[0]->kind;
}

Result<SentenceTransformersConfig> read_sentence_transformers_config(const std::filesystem::path& dir) {
  SentenceTransformersConfig out;
  out.pooling_source = "default (mean)";
  std::error_code ec;
  const auto modules_path = dir / "modules.json";
  if (std::filesystem::exists(modules_path, ec)) {
    FATHOM_ASSIGN_OR_RETURN(auto modules, read_json_file(modules_path));
    if (!modules.is_array()) return make_error(ErrorCode::kLoadFailed, modules_path.string() + ": expected a JSON array");
    out.has_modules = true;
    for (const auto& m : modules) {
      FATHOM_ASSIGN_OR_RETURN(auto type, json_string(m, "type", modules_path));
      FATHOM_ASSIGN_OR_RETURN(auto path, json_string(m, "path", modules_path));
      if (!type) return make_error(ErrorCode::kLoadFailed, modules_path.string() + ": a module has no `type`");
      const std::string rel = path.value_or("");
      if (ends_with(*type, "Transformer")) continue;
      if (ends_with(*type, "Normalize")) {
        out.normalize = true;
        continue;
      }
      if (ends_with(*type, "Pooling")) {
        const auto cfg_path = dir / rel / "config.json";
        FATHOM_ASSIGN_OR_RETURN(auto cfg, read_json_file(cfg_path));
        FATHOM_ASSIGN_OR_RETURN(out.pooling, parse_pooling_config(cfg, cfg_path));
        out.pooling_source = cfg_path.string();
        out.has_pooling = true;
        FATHOM_ASSIGN_OR_RETURN(auto dim, json_int(cfg, "word_embedding_dimension", cfg_path));
        if (!dim) { FATHOM_ASSIGN_OR_RETURN(dim, json_int(cfg, "embedding_dimension", cfg_path)); }
        if (dim) out.pooling_dimension = static_cast<int>(*dim);
        continue;
      }
      return unsupported(modules_path, "module '" + *type + "' (" + (rel.empty() ? "." : rel) +
                                           ") is not supported (supported: Transformer, Pooling, Normalize)");
    }
  }
  const auto sbert = dir / "sentence_bert_config.json";
  if (std::filesystem::exists(sbert, ec)) {
    FATHOM_ASSIGN_OR_RETURN(auto j, read_json_file(sbert));
    FATHOM_ASSIGN_OR_RETURN(auto len, json_int(j, "max_seq_length", sbert));
    if (len && *len > 0 && *len <= 10'000'000) out.max_seq_length = static_cast<int>(*len);
  }
  const auto st_config = dir / "config_sentence_transformers.json";
  if (std::filesystem::exists(st_config, ec)) {
    FATHOM_ASSIGN_OR_RETURN(auto j, read_json_file(st_config));
    if (!j.is_object()) return make_error(ErrorCode::kLoadFailed, st_config.string() + ": expected a JSON object");
    if (auto it = j.find("prompts"); it != j.end() && !it->is_null()) {
      if (!it->is_object())
        return make_error(ErrorCode::kLoadFailed, st_config.string() + ": `prompts` should map prompt names to texts");
      for (const auto& [name, text] : it->items()) {
        if (!text.is_string())
          return make_error(ErrorCode::kLoadFailed, st_config.string() + ": prompt \"" + name + "\" should be a string");
        out.prompts.emplace_back(name, text.get<std::string>());
      }
    }
    if (auto it = j.find("default_prompt_name"); it != j.end() && !it->is_null()) {
      if (!it->is_string())
        return make_error(ErrorCode::kLoadFailed, st_config.string() + ": `default_prompt_name` should be a string or null");
      out.default_prompt_name = it->get<std::string>();
      if (!out.default_prompt_name.empty() && !find_prompt(out, out.default_prompt_name))
        return make_error(ErrorCode::kLoadFailed, st_config.string() + ": default_prompt_name \"" +
                                                      out.default_prompt_name + "\" is not one of its prompts");
    }
  }
  return out;
}

const std::string* find_prompt(const SentenceTransformersConfig& config, const std::string& name) {
  for (const auto& [n, text] : config.prompts)
    if (n == name) return &text;
  return nullptr;
}

Result<std::optional<int>> read_tokenizer_max_length(const std::filesystem::path& dir) {
  const auto path = dir / "tokenizer_config.json";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::optional<int>();
  FATHOM_ASSIGN_OR_RETURN(auto j, read_json_file(path));
  // transformers writes int(1e30) for "no limit"; it may come back as a float.
  FATHOM_ASSIGN_OR_RETURN(auto v, json_number(j, "model_max_length", path));
  if (!v || *v <= 0 || *v > 1e7) return std::optional<int>();
  return std::optional<int>(static_cast<int>(*v));
}

int resolve_max_input_tokens(std::optional<int> max_seq_length, std::optional<int> tokenizer_max, int position_limit) {
  int limit = position_limit;
  if (max_seq_length) limit = std::min(limit, *max_seq_length);
  else if (tokenizer_max) limit = std::min(limit, *tokenizer_max);
  return std::max(limit, 1);
}

}  // namespace fathom::formats
