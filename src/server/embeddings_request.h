#pragma once
// POST /v1/embeddings: request parsing and validation, apart from HTTP so it can be tested directly.
//
// parse_embeddings_request() checks everything that does not depend on the model (types, emptiness, the
// number of inputs); tokenize_inputs() checks the rest against the model (vocabulary, lengths,
// truncate_prompt_tokens, dimensions) and produces the token sequences the engine runs. Both return
// fathom Errors whose `param` names the field at fault.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "engine/model_manager.h"

namespace fathom::server {

struct EmbeddingsRequest {
  std::string model;
  bool token_input = false;                        // input given as token ids
  bool single = false;                             // input was one string / one id array (not a list)
  std::vector<std::string> texts;                  // when !token_input
  std::vector<std::vector<int64_t>> token_ids;     // when token_input
  bool base64 = false;                             // encoding_format == "base64"
  std::optional<int> dimensions;                   // Matryoshka truncation
  std::optional<int> truncate_prompt_tokens;       // -1 = the model's maximum
  std::optional<bool> normalize;                   // nullopt = the model's default
  // A prompt the model declares (config_sentence_transformers.json `prompts`), prepended to every text input
  // before tokenization (sentence-transformers' encode(prompt_name=...)); nullopt = the model's default prompt.
  std::optional<std::string> prompt_name;
  std::optional<std::string> user;
  // embedding_type: nullopt = "dense" (the pooled vector); sparse = lexical weights; colbert = one vector per
  // token after the first (bge-m3's heads). Per-token types take neither base64 nor dimensions.
  std::optional<models::TokenOutput> token_output;

  std::size_t size() const { return token_input ? token_ids.size() : texts.size(); }
};

Result<EmbeddingsRequest> parse_embeddings_request(const nlohmann::json& body, std::size_t max_inputs);

// Token sequences ready for the engine, one per input, after truncation; `prompt_tokens` is their total.
struct TokenizedInputs {
  std::vector<std::vector<int32_t>> sequences;
  std::size_t prompt_tokens = 0;
};

// Validates `request` against the model (`facts` of model `request.model`) and tokenizes text inputs
// (with special tokens), each after the text of its prompt (prompt_name, else the model's default prompt; a
// prompt_name the model does not declare is an error listing those it does; token-id inputs take none).
// Token-id inputs are taken as given (they must already hold any special tokens) and truncated on the right
// when truncation was asked. An embedding_type the model lacks is an error naming the types it has.
Result<TokenizedInputs> tokenize_inputs(const EmbeddingsRequest& request, const engine::EmbedderFacts& facts);

}  // namespace fathom::server
