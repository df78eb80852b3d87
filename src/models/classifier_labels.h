#pragma once
// What config.json says about a `*ForSequenceClassification` head, whatever the encoder family: the label
// names (id2label / num_labels) and the activation that turns logits into scores
// (sentence_transformers.activation_fn, the older sbert_ce_default_activation_function, else sigmoid for one
// label or problem_type multi_label_classification, softmax otherwise). Shared by the BERT family's heads
// (bert/classifier_head.h) and the encoder runtime's (encoder/encoder_spec.h); each family names its own
// tensors.
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "models/model.h"

namespace fathom::models {

struct ClassifierLabels {
  std::vector<std::string> labels;    // id2label in id order ("LABEL_i" where missing); size() = logits
  ScoreActivation activation = ScoreActivation::kSigmoid;
  std::string activation_source;      // where the activation came from, for inspect and logs
};

// Reads num_labels / id2label / problem_type / sentence_transformers.activation_fn (or
// sbert_ce_default_activation_function) from `config` (`file` names it in messages). Errors name the file
// and key; an activation other than Sigmoid, Identity or Softmax is kUnsupported.
Result<ClassifierLabels> parse_classifier_labels(const nlohmann::json& config, const std::filesystem::path& file);

// The tasks a loaded head serves: with several labels it classifies only, so Task::kScore (rerank, score) is
// dropped from `info.tasks`; a one-logit cross-encoder keeps them all.
void narrow_classifier_tasks(ModelInfo& info, const ClassifierLabels& labels);

}  // namespace fathom::models
