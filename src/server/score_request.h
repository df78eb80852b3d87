#pragma once
// POST /v1/rerank, /rerank, /v2/rerank, /v1/score, /score, /v1/classify, /classify: request parsing and
// validation that does not depend on the model, apart from HTTP so it can be tested directly. Errors are
// fathom Errors whose `param` names the field at fault (HTTP 400).
//
// Shapes accepted (see docs/api.md):
//   rerank, Cohere / Jina:  {model, query, documents: [string | {text}], top_n?, return_documents?}
//   rerank, TEI:            {model?, query, texts: [string], raw_scores?, return_text?}
//   score:                  {model, text_1: string | [string], text_2: string | [string]}: 1:1, 1:N, N:N
//   classify:               {model, input: string | [string]}
// Every shape also takes truncation: `truncate` or `truncation` (true: cut the document side of a pair, or
// the text, to the model's limit) and `truncate_prompt_tokens` (-1: the model's limit; N: N tokens).
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace fathom::server {

struct RerankRequest {
  std::string model;                  // empty when not given (TEI shape): the one model that reranks
  std::string query;
  std::vector<std::string> documents;
  std::optional<std::size_t> top_n;   // >= 1; more than the documents returns them all
  bool return_documents = false;      // Cohere/Jina: each result carries {"document": {"text"}}
  bool tei = false;                   // TEI shape: the answer is a bare array of {index, score[, text]}
  bool raw_scores = false;            // TEI: logits instead of activated scores
  std::optional<int> truncate_to;     // -1 = the model's limit; unset = refuse what is over the limit
};

struct ScoreRequest {
  std::string model;
  std::vector<std::string> text_1, text_2;
  std::vector<std::pair<std::size_t, std::size_t>> pairs;  // (index into text_1, index into text_2), answer order
  std::optional<int> truncate_to;
};

struct ClassifyRequest {
  std::string model;
  std::vector<std::string> inputs;
  std::optional<int> truncate_to;
};

// `max_inputs` bounds the documents of a rerank, the pairs of a score and the inputs of a classify.
Result<RerankRequest> parse_rerank_request(const nlohmann::json& body, std::size_t max_inputs);
Result<ScoreRequest> parse_score_request(const nlohmann::json& body, std::size_t max_inputs);
Result<ClassifyRequest> parse_classify_request(const nlohmann::json& body, std::size_t max_inputs);

}  // namespace fathom::server
