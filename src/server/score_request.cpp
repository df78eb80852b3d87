#include "server/score_request.h"

namespace fathom::server {
namespace {

using Json = nlohmann::json;

Error bad(const std::string& param, const std::string& message) {
  return make_error(ErrorCode::kInvalidArgument, message, param);
}

// "model": a non-empty string; absent is allowed only where `optional`.
Result<std::string> read_model(const Json& body, bool optional) {
  auto it = body.find("model");
  if (it == body.end() || it->is_null()) {
    if (optional) return std::string();
    return bad("model", "'model' is required: the name of a loaded model (GET /v1/models lists them)");
  }
  if (!it->is_string() || it->get<std::string>().empty())
    return bad("model", "'model' must be a non-empty string naming a loaded model");
  return it->get<std::string>();
}

Result<std::string> read_text(const Json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return bad(key, std::string("'") + key + "' is required (a string)");
  if (!it->is_string()) return bad(key, std::string("'") + key + "' must be a string");
  return it->get<std::string>();
}

// A string or a non-empty list of strings; `single` says which it was.
Result<std::vector<std::string>> read_texts(const Json& body, const char* key, std::size_t max_inputs,
                                            bool* single = nullptr) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return bad(key, std::string("'") + key + "' is required");
  std::vector<std::string> out;
  if (it->is_string()) {
    if (single) *single = true;
    out.push_back(it->get<std::string>());
    return out;
  }
  if (single) *single = false;
  if (!it->is_array()) return bad(key, std::string("'") + key + "' must be a string or a list of strings");
  if (it->empty()) return bad(key, std::string("'") + key + "' must not be empty");
  if (it->size() > max_inputs)
    return bad(key, std::string("'") + key + "' holds " + std::to_string(it->size()) + " items; at most " +
                        std::to_string(max_inputs) + " are accepted per request (--max-inputs)");
  for (std::size_t i = 0; i < it->size(); ++i) {
    if (!(*it)[i].is_string())
      return bad(key, std::string(key) + "[" + std::to_string(i) + "] must be a string");
    out.push_back((*it)[i].get<std::string>());
  }
  return out;
}

Result<bool> read_bool(const Json& body, const char* key, bool fallback) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return bad(key, std::string("'") + key + "' must be true or false");
  return it->get<bool>();
}

// truncate / truncation (booleans) and truncate_prompt_tokens (-1 or a positive count).
Result<std::optional<int>> read_truncation(const Json& body) {
  std::optional<int> out;
  for (const char* key : {"truncate", "truncation"}) {
    FATHOM_ASSIGN_OR_RETURN(bool on, read_bool(body, key, false));
    if (on) out = -1;
  }
  if (auto it = body.find("truncate_prompt_tokens"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer() || (it->get<int64_t>() < 1 && it->get<int64_t>() != -1))
      return bad("truncate_prompt_tokens", "'truncate_prompt_tokens' must be -1 (the model's limit) or a positive "
                                           "number of tokens");
    out = static_cast<int>(std::min<int64_t>(it->get<int64_t>(), 1 << 30));
  }
  return out;
}

}  // namespace

Result<RerankRequest> parse_rerank_request(const Json& body, std::size_t max_inputs) {
  RerankRequest r;
  const bool has_docs = body.contains("documents"), has_texts = body.contains("texts");
  if (has_docs && has_texts) return bad("texts", "give either 'documents' (Cohere/Jina shape) or 'texts' (TEI shape), not both");
  if (!has_docs && !has_texts) return bad("documents", "'documents' is required: the texts to rank against 'query'");
  r.tei = has_texts;
  FATHOM_ASSIGN_OR_RETURN(r.model, read_model(body, r.tei));
  FATHOM_ASSIGN_OR_RETURN(r.query, read_text(body, "query"));
  FATHOM_ASSIGN_OR_RETURN(r.truncate_to, read_truncation(body));
  if (r.tei) {
    FATHOM_ASSIGN_OR_RETURN(r.documents, read_texts(body, "texts", max_inputs));
    FATHOM_ASSIGN_OR_RETURN(r.raw_scores, read_bool(body, "raw_scores", false));
    FATHOM_ASSIGN_OR_RETURN(r.return_documents, read_bool(body, "return_text", false));
  } else {
    const Json& docs = body["documents"];
    if (!docs.is_array()) return bad("documents", "'documents' must be a list of strings or of objects with 'text'");
    if (docs.empty()) return bad("documents", "'documents' must not be empty");
    if (docs.size() > max_inputs)
      return bad("documents", "'documents' holds " + std::to_string(docs.size()) + " items; at most " +
                                  std::to_string(max_inputs) + " are accepted per request (--max-inputs)");
    for (std::size_t i = 0; i < docs.size(); ++i) {
      const Json& d = docs[i];
      if (d.is_string()) {
        r.documents.push_back(d.get<std::string>());
      } else if (d.is_object() && d.contains("text") && d["text"].is_string()) {
        r.documents.push_back(d["text"].get<std::string>());
      } else {
        return bad("documents", "documents[" + std::to_string(i) + "] must be a string or an object with a string 'text'");
      }
    }
    FATHOM_ASSIGN_OR_RETURN(r.return_documents, read_bool(body, "return_documents", false));
    if (auto it = body.find("top_n"); it != body.end() && !it->is_null()) {
      if (!it->is_number_integer() || it->get<int64_t>() < 1)
        return bad("top_n", "'top_n' must be a positive integer");
      r.top_n = static_cast<std::size_t>(std::min<int64_t>(it->get<int64_t>(), static_cast<int64_t>(r.documents.size())));
    }
  }
  return r;
}

Result<ScoreRequest> parse_score_request(const Json& body, std::size_t max_inputs) {
  ScoreRequest r;
  FATHOM_ASSIGN_OR_RETURN(r.model, read_model(body, false));
  bool single_1 = false, single_2 = false;
  FATHOM_ASSIGN_OR_RETURN(r.text_1, read_texts(body, "text_1", max_inputs, &single_1));
  FATHOM_ASSIGN_OR_RETURN(r.text_2, read_texts(body, "text_2", max_inputs, &single_2));
  FATHOM_ASSIGN_OR_RETURN(r.truncate_to, read_truncation(body));
  if (r.text_1.size() == 1) {
    for (std::size_t j = 0; j < r.text_2.size(); ++j) r.pairs.emplace_back(0, j);  // 1:1 and 1:N
  } else if (r.text_1.size() == r.text_2.size()) {
    for (std::size_t i = 0; i < r.text_1.size(); ++i) r.pairs.emplace_back(i, i);  // N:N, pairwise
  } else {
    return bad("text_2", "text_1 holds " + std::to_string(r.text_1.size()) + " texts and text_2 " +
                             std::to_string(r.text_2.size()) + "; give one text_1 (scored against every text_2) or "
                             "lists of the same length (scored pairwise)");
  }
  return r;
}

Result<ClassifyRequest> parse_classify_request(const Json& body, std::size_t max_inputs) {
  ClassifyRequest r;
  FATHOM_ASSIGN_OR_RETURN(r.model, read_model(body, false));
  FATHOM_ASSIGN_OR_RETURN(r.inputs, read_texts(body, "input", max_inputs));
  FATHOM_ASSIGN_OR_RETURN(r.truncate_to, read_truncation(body));
  return r;
}

}  // namespace fathom::server
