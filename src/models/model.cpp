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

const char* token_output_name(TokenOutput kind) {
  return kind == TokenOutput::kSparse ? "sparse" : "colbert";
}

std::size_t token_output_rows(TokenOutput kind, std::size_t length) {
  if (kind == TokenOutput::kSparse) return length;
  return length > 0 ? length - 1 : 0;
}

Result<std::vector<float>> Embedder::embed_tokens(const std::vector<std::vector<int32_t>>& sequences,
                                                  TokenOutput kind) {
  (void)sequences;
  return make_error(ErrorCode::kUnsupported,
                    std::string("this model has no ") + token_output_name(kind) + " output");
}

}  // namespace fathom::models
