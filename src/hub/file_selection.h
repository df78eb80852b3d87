#pragma once
// Which files of a hub repository fathom downloads: what a model directory needs, not the whole repository.
//
// From the repository's file list (the API's `siblings`):
//   - top-level *.json (config.json, generation_config.json, preprocessor_config.json, tokenizer.json,
//     tokenizer_config.json, special_tokens_map.json, added_tokens.json, modules.json,
//     sentence_bert_config.json, config_sentence_transformers.json, model.safetensors.index.json, a plugin's
//     own *.json ...), except the indexes of unsupported weight formats (pytorch_model.bin.index.json, ...);
//   - vocabulary files: vocab.txt, vocab.json, merges.txt, *.model (sentencepiece), *.tiktoken;
//   - weights: model.safetensors, else model.safetensors.index.json and the shards its weight_map names;
//   - every file of the sentence-transformers module folders modules.json names (1_Pooling/config.json,
//     2_Dense/config.json + model.safetensors, ...), except weights in unsupported formats.
// Repositories with only PyTorch (.bin), TensorFlow, Flax, ONNX or GGUF weights are refused: fathom loads
// safetensors only. Pure functions, any thread.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace fathom::hub {

// The files to fetch first (configs, tokenizer, vocabularies, model.safetensors or the shard index, and
// bge-m3's sparse_linear.pt + colbert_linear.pt when the repository has both).
// Fails for a repository without config.json or without safetensors weights (naming what it has instead).
Result<std::vector<std::string>> select_initial_files(const std::string& repo, const std::vector<std::string>& siblings);
// The files of the module folders `modules` (modules.json) names, among `siblings`.
std::vector<std::string> module_files(const nlohmann::json& modules, const std::vector<std::string>& siblings);
// The shard files `index` (model.safetensors.index.json) names in weight_map; each must be among `siblings`.
Result<std::vector<std::string>> shard_files(const std::string& repo, const nlohmann::json& index,
                                             const std::vector<std::string>& siblings);

}  // namespace fathom::hub
