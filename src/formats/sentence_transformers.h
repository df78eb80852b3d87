#pragma once
// sentence-transformers metadata of a model directory: modules.json, the Pooling module's config
// (1_Pooling/config.json), the Normalize module, sentence_bert_config.json, the prompts of
// config_sentence_transformers.json, and the sequence-length limit resolved from those and
// tokenizer_config.json.
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace fathom::formats {

enum class PoolingKind { kCls, kMean, kMax, kLastToken };
const char* pooling_kind_name(PoolingKind kind);  // "cls", "mean", "max", "lasttoken"

struct SentenceTransformersConfig {
  bool has_modules = false;             // modules.json was present
  bool has_pooling = false;             // modules.json lists a Pooling module
  PoolingKind pooling = PoolingKind::kMean;
  std::string pooling_source;           // the file that decided the pooling, or "default (mean)"
  bool normalize = false;               // a module whose type ends in "Normalize"
  std::optional<int> max_seq_length;    // sentence_bert_config.json `max_seq_length`
  std::optional<int> pooling_dimension; // 1_Pooling/config.json `word_embedding_dimension`/`embedding_dimension`
  // config_sentence_transformers.json: `prompts` (name -> text prepended to an input, by name; e.g.
  // Qwen3-Embedding's "query" instruction) and `default_prompt_name` (empty when null or absent).
  std::vector<std::pair<std::string, std::string>> prompts;
  std::string default_prompt_name;
};

// The text of the prompt `name` in `config.prompts`, or nullptr when it declares none of that name.
const std::string* find_prompt(const SentenceTransformersConfig& config, const std::string& name);

// Pooling from a Pooling module config, in either style:
//   new: {"pooling_mode": "mean" | "cls" | "max" | "lasttoken"}
//   old: {"pooling_mode_cls_token": bool, "pooling_mode_mean_tokens": bool, "pooling_mode_max_tokens": bool,
//         "pooling_mode_lasttoken": bool, ...}
// Mean when nothing is declared. Modes fathom cannot compute (mean_sqrt_len_tokens, weightedmean, several
// modes concatenated) are kUnsupported errors naming `file` and the mode.
Result<PoolingKind> parse_pooling_config(const nlohmann::json& config, const std::filesystem::path& file);

// Reads the directory's sentence-transformers files. Missing files mean defaults (mean pooling, no
// normalisation); invalid ones, and modules fathom cannot apply (e.g. Dense), are errors naming the file.
Result<SentenceTransformersConfig> read_sentence_transformers_config(const std::filesystem::path& dir);

// tokenizer_config.json `model_max_length`, ignoring absent, non-positive and absurd (> 1e7) values.
Result<std::optional<int>> read_tokenizer_max_length(const std::filesystem::path& dir);

// The longest input in tokens: sentence_bert_config's max_seq_length, else the tokenizer's
// model_max_length, each capped by `position_limit` (the positions the model can embed); the position
// limit alone when neither is declared.
int resolve_max_input_tokens(std::optional<int> max_seq_length, std::optional<int> tokenizer_max, int position_limit);

}  // namespace fathom::formats
