#include "models/bert/classifier_head.h"

namespace fathom::models::bert {

bool is_sequence_classification(const std::string& architecture) {
  return architecture == "BertForSequenceClassification" || architecture == "RobertaForSequenceClassification" ||
         architecture == "XLMRobertaForSequenceClassification";
}

Result<ClassifierHeadConfig> parse_classifier_head(const nlohmann::json& j, const std::filesystem::path& file,
                                                   bool roberta) {
  ClassifierHeadConfig c;
  FATHOM_ASSIGN_OR_RETURN(static_cast<ClassifierLabels&>(c), parse_classifier_labels(j, file));
  if (roberta) {
    c.dense = "classifier.dense";
    c.out = "classifier.out_proj";
  } else {
    c.dense = "pooler.dense";
    c.out = "classifier";
    c.dense_under_encoder = true;
  }
  return c;
}

}  // namespace fathom::models::bert
