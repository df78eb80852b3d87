#include "server/embeddings_request.h"

#include <algorithm>
#include <limits>

#include "engine/embedding_postprocess.h"
#include "formats/tokenizer/tokenizer.h"

namespace fathom::server {
namespace {

constexpr const char* kInputShapes =
    "input must be a non-empty string, an array of non-empty strings, an array of token ids (integers), "
    "or an array of arrays of token ids";

Error input_error(std::string message) { return make_error(ErrorCode::kInvalidArgument, std::move(message), "input"); }

std::string where(const EmbeddingsRequest& r, std::size_t i) {
  return r.single ? std::string("input") : "input[" + std::to_string(i) + "]";
}

// An integer field that may be absent or null.
Result<std::optional<int>> optional_int(const nlohmann::json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<int>{};
  if (!it->is_number_integer()) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string(name) + " must be an integer, got " + std::string(it->type_name()) +
                          (it->is_number_float() ? " " + it->dump() : ""),
                      name);
  }
  int64_t v = it->get<int64_t>();
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
    return make_error(ErrorCode::kInvalidArgument, std::string(name) + " is out of range: " + it->dump(), name);
  }
  return std::optional<int>(static_cast<int>(v));
}

Result<std::vector<int64_t>> token_array(const nlohmann::json& array, const std::string& at) {
  if (array.empty()) return input_error(at + " is an empty array of token ids; " + kInputShapes);
  std::vector<int64_t> ids;
  ids.reserve(array.size());
  for (std::size_t j = 0; j < array.size(); ++j) {
    const auto& v = array[j];
    if (!v.is_number_integer()) {
      return input_error(at + "[" + std::to_string(j) + "] must be an integer token id, got " + v.type_name() +
                         "; " + kInputShapes);
    }
    ids.push_back(v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                      ? std::numeric_limits<int64_t>::max()
                      : v.get<int64_t>());
  }
  return ids;
}

}  // namespace

Result<EmbeddingsRequest> parse_embeddings_request(const nlohmann::json& body, std::size_t max_inputs) {
  EmbeddingsRequest r;

  auto model = body.find("model");
  if (model == body.end() || model->is_null()) {
    return make_error(ErrorCode::kInvalidArgument, "model is required (the name of a loaded model)", "model");
  }
  if (!model->is_string() || model->get<std::string>().empty()) {
    return make_error(ErrorCode::kInvalidArgument, "model must be a non-empty string", "model");
  }
  r.model = model->get<std::string>();

  auto input = body.find("input");
  if (input == body.end() || input->is_null()) return input_error("input is required; " + std::string(kInputShapes));
  if (input->is_string()) {
    r.single = true;
    r.texts.push_back(input->get<std::string>());
    if (r.texts[0].empty()) return input_error("input must not be an empty string");
  } else if (input->is_array()) {
    if (input->empty()) return input_error("input must not be an empty array");
    const auto& first = (*input)[0];
    if (first.is_string()) {
      for (std::size_t i = 0; i < input->size(); ++i) {
        const auto& v = (*input)[i];
        if (!v.is_string()) {
          return input_error("input[" + std::to_string(i) + "] must be a string like the other inputs, got " +
                             v.type_name());
        }
        if (v.get_ref<const std::string&>().empty()) {
          return input_error("input[" + std::to_string(i) + "] must not be an empty string");
        }
        r.texts.push_back(v.get<std::string>());
      }
    } else if (first.is_number_integer()) {
      r.token_input = true;
      r.single = true;
      FATHOM_ASSIGN_OR_RETURN(auto ids, token_array(*input, "input"));
      r.token_ids.push_back(std::move(ids));
    } else if (first.is_array()) {
      r.token_input = true;
      for (std::size_t i = 0; i < input->size(); ++i) {
        const auto& v = (*input)[i];
        std::string at = "input[" + std::to_string(i) + "]";
        if (!v.is_array()) return input_error(at + " must be an array of token ids, got " + v.type_name());
        FATHOM_ASSIGN_OR_RETURN(auto ids, token_array(v, at));
        r.token_ids.push_back(std::move(ids));
      }
    } else {
      return input_error(std::string("input[0] has type ") + first.type_name() + "; " + kInputShapes);
    }
  } else {
    return input_error(std::string("input has type ") + input->type_name() + "; " + kInputShapes);
  }
  if (r.size() > max_inputs) {
    return input_error("input has " + std::to_string(r.size()) + " items; at most " + std::to_string(max_inputs) +
                       " are allowed per request");
  }

  if (auto it = body.find("encoding_format"); it != body.end() && !it->is_null()) {
    if (!it->is_string() || (*it != "float" && *it != "base64")) {
      return make_error(ErrorCode::kInvalidArgument,
                        "encoding_format must be \"float\" or \"base64\", got " + it->dump(), "encoding_format");
    }
    r.base64 = *it == "base64";
  }
  FATHOM_ASSIGN_OR_RETURN(r.dimensions, optional_int(body, "dimensions"));
  if (r.dimensions && *r.dimensions < 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "dimensions must be a positive integer, got " + std::to_string(*r.dimensions), "dimensions");
  }
  FATHOM_ASSIGN_OR_RETURN(r.truncate_prompt_tokens, optional_int(body, "truncate_prompt_tokens"));
  if (r.truncate_prompt_tokens && *r.truncate_prompt_tokens < 1 && *r.truncate_prompt_tokens != -1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "truncate_prompt_tokens must be a positive number of tokens or -1 (the model's maximum), got " +
                          std::to_string(*r.truncate_prompt_tokens),
                      "truncate_prompt_tokens");
  }
  if (auto it = body.find("normalize"); it != body.end() && !it->is_null()) {
    if (!it->is_boolean()) {
      return make_error(ErrorCode::kInvalidArgument, std::string("normalize must be true or false, got ") + it->dump(),
                        "normalize");
    }
    r.normalize = it->get<bool>();
  }
  if (auto it = body.find("prompt_name"); it != body.end() && !it->is_null()) {
    if (!it->is_string() || it->get_ref<const std::string&>().empty())
      return make_error(ErrorCode::kInvalidArgument,
                        std::string("prompt_name must be the name of a prompt the model declares, got ") + it->dump(),
                        "prompt_name");
    r.prompt_name = it->get<std::string>();
  }
  if (auto it = body.find("embedding_type"); it != body.end() && !it->is_null()) {
    if (!it->is_string() || (*it != "dense" && *it != "sparse" && *it != "colbert"))
      return make_error(ErrorCode::kInvalidArgument,
                        "embedding_type must be \"dense\", \"sparse\" or \"colbert\", got " + it->dump(),
                        "embedding_type");
    if (*it == "sparse") r.token_output = models::TokenOutput::kSparse;
    if (*it == "colbert") r.token_output = models::TokenOutput::kColbert;
  }
  if (r.token_output && r.base64)
    return make_error(ErrorCode::kInvalidArgument,
                      std::string("encoding_format \"base64\" is for dense embeddings; embedding_type \"") +
                          models::token_output_name(*r.token_output) +
                          "\" answers in JSON: pass encoding_format \"float\" (the openai clients ask for base64 "
                          "unless told otherwise)",
                      "encoding_format");
  if (r.token_output && r.dimensions)
    return make_error(ErrorCode::kInvalidArgument,
                      std::string("dimensions applies to dense embeddings, not to embedding_type \"") +
                          models::token_output_name(*r.token_output) + "\"",
                      "dimensions");
  if (auto it = body.find("user"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) {
      return make_error(ErrorCode::kInvalidArgument, std::string("user must be a string, got ") + it->type_name(),
                        "user");
    }
    r.user = it->get<std::string>();
  }
  return r;
}

namespace {

// The text prepended to every text input: the named prompt, else the model's default one, else none.
Result<std::string> resolve_prompt(const EmbeddingsRequest& r, const engine::EmbedderFacts& facts) {
  const std::string name = r.prompt_name.value_or(facts.default_prompt_name);
  if (name.empty()) return std::string();
  for (const auto& [n, text] : facts.prompts)
    if (n == name) {
      if (r.token_input && r.prompt_name && !text.empty())
        return make_error(ErrorCode::kInvalidArgument,
                          "prompt_name applies to text inputs; token-id inputs must already hold the prompt's tokens",
                          "prompt_name");
      return r.token_input ? std::string() : text;
    }
  std::string declared;
  for (const auto& [n, text] : facts.prompts) declared += (declared.empty() ? "" : ", ") + n;
  return make_error(ErrorCode::kInvalidArgument,
                    "model '" + r.model + "' declares no prompt named '" + name + "'" +
                        (declared.empty() ? std::string(" (it declares no prompts)") : " (its prompts: " + declared + ")"),
                    "prompt_name");
}

}  // namespace

Result<TokenizedInputs> tokenize_inputs(const EmbeddingsRequest& r, const engine::EmbedderFacts& facts) {
  const int max_tokens = facts.max_input_tokens;
  if (r.token_output && std::find(facts.token_outputs.begin(), facts.token_outputs.end(), *r.token_output) ==
                            facts.token_outputs.end()) {
    std::string types = "dense";
    for (models::TokenOutput t : facts.token_outputs) types += std::string(", ") + models::token_output_name(t);
    return make_error(ErrorCode::kInvalidArgument,
                      "model '" + r.model + "' has no " + models::token_output_name(*r.token_output) +
                          " output (its embedding types: " + types +
                          "); sparse and colbert come with bge-m3's sparse_linear.pt and colbert_linear.pt",
                      "embedding_type");
  }
  if (r.dimensions) {
    FATHOM_TRY(engine::check_dimensions(r.model, *r.dimensions, facts.supports_matryoshka, facts.matryoshka_dimensions,
                                        facts.embedding_dim));
  }
  std::optional<int> limit;  // truncation length, when asked
  if (r.truncate_prompt_tokens) {
    int t = *r.truncate_prompt_tokens;
    if (t == -1) t = max_tokens;
    if (t > max_tokens) {
      return make_error(ErrorCode::kInvalidArgument,
                        "truncate_prompt_tokens is " + std::to_string(t) + " but model '" + r.model +
                            "' accepts at most " + std::to_string(max_tokens) + " tokens; use 1.." +
                            std::to_string(max_tokens) + " or -1",
                        "truncate_prompt_tokens");
    }
    limit = t;
  }

  FATHOM_ASSIGN_OR_RETURN(const std::string prompt, resolve_prompt(r, facts));

  TokenizedInputs out;
  out.sequences.reserve(r.size());
  const formats::Tokenizer* tokenizer = facts.tokenizer;
  if (tokenizer == nullptr) return make_error(ErrorCode::kInternal, "model '" + r.model + "' has no tokenizer");
  const int64_t vocab = tokenizer->vocab_size();

  for (std::size_t i = 0; i < r.size(); ++i) {
    std::vector<int32_t> ids;
    if (r.token_input) {
      const auto& raw = r.token_ids[i];
      for (std::size_t j = 0; j < raw.size(); ++j) {
        if (raw[j] < 0 || raw[j] >= vocab) {
          return input_error(where(r, i) + "[" + std::to_string(j) + "] = " + std::to_string(raw[j]) +
                             " is not a token id of model '" + r.model + "' (its vocabulary is 0.." +
                             std::to_string(vocab - 1) + ")");
        }
      }
      std::size_t keep = raw.size();
      if (limit) keep = std::min(keep, static_cast<std::size_t>(*limit));
      ids.assign(raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(keep));
    } else {
      formats::EncodeOptions options;
      options.add_special_tokens = true;
      options.max_length = limit;
      auto encoded = tokenizer->encode(prompt.empty() ? r.texts[i] : prompt + r.texts[i], options);
      if (!encoded.ok()) {
        Error e = encoded.error();
        e.message = where(r, i) + ": " + e.message;
        e.param = "input";
        return e;
      }
      ids = std::move(encoded).value();
      if (ids.empty()) return input_error(where(r, i) + " produced no tokens");
    }
    if (static_cast<int>(ids.size()) > max_tokens) {
      return make_error(ErrorCode::kInvalidArgument,
                        where(r, i) + " has " + std::to_string(ids.size()) + " tokens, more than the " +
                            std::to_string(max_tokens) + " tokens model '" + r.model +
                            "' accepts; shorten it or pass truncate_prompt_tokens (e.g. -1 to truncate to the "
                            "model's maximum)",
                        "input");
    }
    out.prompt_tokens += ids.size();
    out.sequences.push_back(std::move(ids));
  }
  return out;
}

}  // namespace fathom::server
