#pragma once
// config.json of the BERT family (BERT, RoBERTa, XLM-RoBERTa encoders).
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "models/matryoshka.h"
#include "ops/activation.h"

namespace fathom::models::bert {

struct BertConfig {
  std::string model_type;             // "bert", "roberta", "xlm-roberta"
  int hidden_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int intermediate_size = 0;
  int vocab_size = 0;
  int max_position_embeddings = 0;
  int type_vocab_size = 2;
  int pad_token_id = 0;
  float layer_norm_eps = 1e-12f;
  ops::GeluMode gelu = ops::GeluMode::kErf;
  bool roberta_positions = false;     // positions start at pad_token_id + 1 (RoBERTa, XLM-R)
  MatryoshkaDims matryoshka;

  int head_dim() const { return hidden_size / num_heads; }
  int position_offset() const { return roberta_positions ? pad_token_id + 1 : 0; }
  // Positions the model can embed: max_position_embeddings minus the RoBERTa offset.
  int position_limit() const { return max_position_embeddings - position_offset(); }
};

// Parses and checks config.json (errors name the file and key). `roberta` selects RoBERTa positions.
Result<BertConfig> parse_bert_config(const nlohmann::json& config, const std::filesystem::path& file, bool roberta);

}  // namespace fathom::models::bert
