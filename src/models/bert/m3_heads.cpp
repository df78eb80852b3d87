#include "models/bert/m3_heads.h"

#include <algorithm>
#include <string>
#include <system_error>

#include "formats/json_file.h"
#include "formats/safetensors.h"

namespace fathom::models {
namespace {

// The id of tokenizer_config.json's `key` token ("<s>", or {"content": "<s>", ...}); nullopt when absent.
std::optional<int32_t> special_id(const nlohmann::json& config, const char* key, const formats::Tokenizer& tokenizer) {
  auto it = config.find(key);
  if (it == config.end()) return std::nullopt;
  if (it->is_string()) return tokenizer.token_to_id(it->get<std::string>());
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return tokenizer.token_to_id((*it)["content"].get<std::string>());
  return std::nullopt;
}

Result<layers::Linear> load_head(const std::filesystem::path& file, int64_t hidden, int64_t* out_dim,
                                 WeightStore& weights) {
  FATHOM_ASSIGN_OR_RETURN(auto ckpt, formats::Checkpoint::open_file(file));
  const formats::TensorInfo* w = ckpt.find("weight");
  if (!w) return make_error(ErrorCode::kLoadFailed, file.string() + ": tensor 'weight' is missing");
  if (w->shape.size() != 2 || w->shape[1] != hidden || w->shape[0] < 1 || (*out_dim > 0 && w->shape[0] != *out_dim))
    return make_error(ErrorCode::kLoadFailed,
                      file.string() + ": tensor 'weight' has shape " + w->shape_string() + ", expected [" +
                          (*out_dim > 0 ? std::to_string(*out_dim) : std::string("D")) + ", " +
                          std::to_string(hidden) + "] (hidden_size " + std::to_string(hidden) + ")");
  *out_dim = w->shape[0];
  layers::Linear l;
  FATHOM_ASSIGN_OR_RETURN(l.weight, weights.load(ckpt, "weight", Shape{*out_dim, hidden}));
  FATHOM_ASSIGN_OR_RETURN(l.bias, weights.load(ckpt, "bias", Shape{*out_dim}));
  return l;
}

}  // namespace

Result<std::optional<M3Heads>> load_m3_heads(const std::filesystem::path& dir, int64_t hidden, WeightStore& weights,
                                             const formats::Tokenizer& tokenizer) {
  std::error_code ec;
  const auto sparse_file = dir / "sparse_linear.pt", colbert_file = dir / "colbert_linear.pt";
  const bool has_sparse = std::filesystem::exists(sparse_file, ec), has_colbert = std::filesystem::exists(colbert_file, ec);
  if (!has_sparse && !has_colbert) return std::optional<M3Heads>();
  if (has_sparse != has_colbert)
    return make_error(ErrorCode::kLoadFailed,
                      (has_sparse ? sparse_file : colbert_file).string() + " is present but " +
                          (has_sparse ? colbert_file : sparse_file).filename().string() +
                          " is missing; bge-m3's sparse and colbert heads come as a pair");
  M3Heads heads;
  int64_t one = 1, d = 0;
  FATHOM_ASSIGN_OR_RETURN(heads.sparse, load_head(sparse_file, hidden, &one, weights));
  FATHOM_ASSIGN_OR_RETURN(heads.colbert, load_head(colbert_file, hidden, &d, weights));
  heads.colbert_dim = static_cast<int>(d);
  if (auto config = formats::read_json_file(dir / "tokenizer_config.json"); config.ok() && config->is_object()) {
    for (const char* key : {"cls_token", "eos_token", "pad_token", "unk_token"})
      if (auto id = special_id(*config, key, tokenizer)) heads.ignored_ids.push_back(*id);
  }
  std::sort(heads.ignored_ids.begin(), heads.ignored_ids.end());
  heads.ignored_ids.erase(std::unique(heads.ignored_ids.begin(), heads.ignored_ids.end()), heads.ignored_ids.end());
  return std::optional<M3Heads>(std::move(heads));
}

}  // namespace fathom::models
