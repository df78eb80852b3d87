#include "models/classifier_labels.h"

#include <algorithm>
#include <map>

namespace fathom::models {
namespace {

Result<ScoreActivation> activation_from_name(const std::string& name, const std::string& where) {
  // sentence-transformers stores the class path: "torch.nn.modules.activation.Sigmoid", "...linear.Identity".
  const std::string last = name.substr(name.rfind('.') == std::string::npos ? 0 : name.rfind('.') + 1);
  if (last == "Sigmoid") return ScoreActivation::kSigmoid;
  if (last == "Identity") return ScoreActivation::kIdentity;
  if (last == "Softmax") return ScoreActivation::kSoftmax;
  return make_error(ErrorCode::kUnsupported, where + " = '" + name + "' is not supported (supported: Sigmoid, Identity, Softmax)");
}

}  // namespace

Result<ClassifierLabels> parse_classifier_labels(const nlohmann::json& j, const std::filesystem::path& file) {
  ClassifierLabels c;
  const std::string f = file.string();
  std::map<int, std::string> named;
  if (auto it = j.find("id2label"); it != j.end() && it->is_object()) {
    for (const auto& [k, v] : it->items()) {
      int id = -1;
      try {
        std::size_t used = 0;
        id = std::stoi(k, &used);
        if (used != k.size()) id = -1;
      } catch (...) {
        id = -1;
      }
      if (id < 0 || !v.is_string())
        return make_error(ErrorCode::kLoadFailed, f + ": id2label entry \"" + k + "\" should map a label id to a name");
      named[id] = v.get<std::string>();
    }
  }
  int num_labels = named.empty() ? 0 : named.rbegin()->first + 1;
  if (auto it = j.find("num_labels"); it != j.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 1 << 20)
      return make_error(ErrorCode::kLoadFailed, f + ": num_labels should be a positive integer");
    num_labels = it->get<int>();
  }
  if (num_labels == 0) num_labels = 2;  // transformers' PretrainedConfig default
  for (int i = 0; i < num_labels; ++i) c.labels.push_back(named.count(i) ? named[i] : "LABEL_" + std::to_string(i));

  const std::string problem = j.value("problem_type", std::string());
  if (auto st = j.find("sentence_transformers"); st != j.end() && st->is_object() && st->contains("activation_fn") &&
                                                 (*st)["activation_fn"].is_string()) {
    FATHOM_ASSIGN_OR_RETURN(c.activation, activation_from_name((*st)["activation_fn"].get<std::string>(),
                                                                f + ": sentence_transformers.activation_fn"));
    c.activation_source = "sentence_transformers.activation_fn";
  } else if (auto old = j.find("sbert_ce_default_activation_function"); old != j.end() && old->is_string()) {
    FATHOM_ASSIGN_OR_RETURN(c.activation, activation_from_name(old->get<std::string>(),
                                                                f + ": sbert_ce_default_activation_function"));
    c.activation_source = "sbert_ce_default_activation_function";
  } else if (problem == "multi_label_classification" || num_labels == 1) {
    c.activation = ScoreActivation::kSigmoid;
    c.activation_source = num_labels == 1 ? "one label" : "problem_type multi_label_classification";
  } else {
    c.activation = ScoreActivation::kSoftmax;
    c.activation_source = std::to_string(num_labels) + " labels";
  }
  return c;
}

void narrow_classifier_tasks(ModelInfo& info, const ClassifierLabels& labels) {
  if (labels.labels.size() > 1)
    info.tasks.erase(std::remove(info.tasks.begin(), info.tasks.end(), Task::kScore), info.tasks.end());
}

}  // namespace fathom::models
