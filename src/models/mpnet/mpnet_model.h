#pragma once
// MPNet (MPNetModel, MPNetForMaskedLM; e.g. all-mpnet-base-v2) as an embedding model on the shared encoder
// runtime (models/encoder): BERT-style post-norm layers with separate q / k / v projections, absolute
// positions numbered RoBERTa-style from pad_token_id + 1, and one relative-position bias table
// (encoder.relative_attention_bias [buckets, heads]) shared by every layer: the score of query i and key j
// gets table[bucket(j - i), h]. Tensor names with prefix "" or "mpnet.".
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "models/model.h"
#include "models/registry.h"

namespace fathom::models::mpnet {

// The bucket of relative distance `relative` (key position - query position): half the buckets per
// direction (keys after the query in the upper half), exact below num_buckets / 4, logarithmic up to
// max_distance, the last bucket beyond (f32 logarithms).
int relative_bucket(int relative, int num_buckets, int max_distance = 128);

ModelInfo mpnet_model_info();
Result<std::unique_ptr<Model>> load_mpnet(const std::filesystem::path& dir, const nlohmann::json& config,
                                          const LoadOptions& options, const ModelInfo& info);

// The longest sequence config.json lets the model embed (its position limit), or the config error.
Result<int> position_limit(const nlohmann::json& config, const std::filesystem::path& file);

}  // namespace fathom::models::mpnet
