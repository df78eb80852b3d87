#pragma once
// The sequence-classification head of the BERT family (`*ForSequenceClassification`), as transformers
// builds it:
//   BERT             pooler.dense [H, H] + tanh on the [CLS] row, then classifier [L, H]
//   RoBERTa / XLM-R  classifier.dense [H, H] + tanh on the <s> row, then classifier.out_proj [L, H]
// (dropout is the identity at inference). Both are dense -> tanh -> out on the first token, so one struct
// describes them; `names` gives the tensor names each layout uses.
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "models/model.h"

namespace fathom::models::bert {

struct ClassifierHeadConfig {
  std::vector<std::string> labels;    // id2label in id order ("LABEL_i" where missing)
  ScoreActivation activation = ScoreActivation::kSigmoid;
  std::string activation_source;      // where the activation came from, for inspect and logs
  // Tensor names (without the encoder prefix for the pooler: see bert_model.cpp).
  std::string dense, out;             // "pooler.dense" / "classifier"  or  "classifier.dense" / "classifier.out_proj"
  bool dense_under_encoder = false;   // BERT's pooler lives under the encoder prefix ("bert.pooler.dense")
};

// True for the heads this file describes (BertForSequenceClassification, RobertaForSequenceClassification,
// XLMRobertaForSequenceClassification).
bool is_sequence_classification(const std::string& architecture);

// Reads num_labels / id2label / problem_type / sentence_transformers.activation_fn (or the older
// sbert_ce_default_activation_function) from config.json. Errors name the file and key; an activation
// other than Sigmoid, Identity or Softmax is kUnsupported.
Result<ClassifierHeadConfig> parse_classifier_head(const nlohmann::json& config, const std::filesystem::path& file,
                                                   bool roberta);

}  // namespace fathom::models::bert
