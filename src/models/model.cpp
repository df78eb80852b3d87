#include "models/model.h"

namespace fathom::models {

const char* task_name(Task task) {
  switch (task) {
    case Task::kEmbed: return "embed";
    case Task::kTranscribe: return "transcribe";
    case Task::kTranslate: return "translate";
    case Task::kScore: return "score";
    case Task::kClassify: return "classify";
  }
  return "unknown";
}

std::vector<std::string> task_endpoints(Task task) {
  switch (task) {
    case Task::kEmbed: return {"/v1/embeddings", "/v1/score", "/v1/rerank"};
    case Task::kTranscribe: return {"/v1/audio/transcriptions"};
    case Task::kTranslate: return {"/v1/audio/translations"};
    case Task::kScore: return {"/v1/rerank", "/v1/score"};
    case Task::kClassify: return {"/v1/classify"};
  }
  return {};
}

}  // namespace fathom::models
