#pragma once
// The sequence-classification head of the BERT family (`*ForSequenceClassification`), as transformers
// builds it:
//   BERT             pooler.dense [H, H] + tanh on the [CLS] row, then classifier [L, H]
//   RoBERTa / XLM-R  classifier.dense [H, H] + tanh on the <s> row, then classifier.out_proj [L, H]
// (dropout is the identity at inference). Both are dense -> tanh -> out on the first token, so one struct
// describes them: the labels and score activation every family reads alike (models/classifier_labels.h)
// plus the tensor names each layout uses.
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "models/classifier_labels.h"

namespace fathom::models::bert {

struct ClassifierHeadConfig : ClassifierLabels {
  // Tensor names (without the encoder prefix for the pooler: see bert_model.cpp).
  std::string dense, out;             // "pooler.dense" / "classifier"  or  "classifier.dense" / "classifier.out_proj"
  bool dense_under_encoder = false;   // BERT's pooler lives under the encoder prefix ("bert.pooler.dense")
};

// True for the heads this file describes (BertForSequenceClassification, RobertaForSequenceClassification,
// XLMRobertaForSequenceClassification).
bool is_sequence_classification(const std::string& architecture);

// The labels and activation of config.json (parse_classifier_labels, whose errors it returns) and the
// tensor names of the BERT (roberta = false) or RoBERTa / XLM-R layout.
Result<ClassifierHeadConfig> parse_classifier_head(const nlohmann::json& config, const std::filesystem::path& file,
                                                   bool roberta);

}  // namespace fathom::models::bert
