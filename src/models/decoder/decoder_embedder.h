#pragma once
// Decoder-LLM embedding models (Qwen3-Embedding): the decoder core (decoder_lm.h) run over each text's
// prompt, its final-normed hidden state at the last position taken as the embedding (sentence-transformers
// Pooling with pooling_mode_lasttoken), L2-normalised by default when the directory's Normalize module
// says so.
//
// Directory layout, as Qwen3-Embedding ships it: config.json (architectures Qwen3ForCausalLM or Qwen3Model,
// model_type qwen3), the Qwen3Model weights with or without the "model." prefix (lm_head not needed),
// tokenizer.json whose post-processor appends <|endoftext|> to every text (the last token the embedding is
// read at), and the sentence-transformers files: modules.json (a Pooling module is required: a causal LM
// without one is a chat model, not an embedder, and is refused with that reason), 1_Pooling/config.json
// (lasttoken only: other modes need every position), config_sentence_transformers.json `prompts` (the
// instruction prefixes queries take, e.g. "Instruct: ...\nQuery:"; Embedder::prompts()).
//
// Batches: the texts of one embed() call run as one packed prefill (no padding), as many at a time as the
// model's KV cache holds; each text's cache sequence is released after its pass. Prefills run eagerly (the
// decoder's CUDA graphs cover decode steps only).
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"
#include "models/registry.h"

namespace fathom::models::decoder {

// The family's static description (name "qwen3-embedding", architectures Qwen3Model / Qwen3ForCausalLM).
ModelInfo decoder_embedder_model_info();

// Loads DIR (config.json already read into `config`) as a decoder embedding model.
Result<std::unique_ptr<Model>> load_decoder_embedder(const std::filesystem::path& dir, const nlohmann::json& config,
                                                     const LoadOptions& options, const ModelInfo& info);

// `fathom inspect` rows (beyond the pooling and normalisation every embedder shows): decoder, prompts; or the
// error the loader would give
// (a causal LM without sentence-transformers pooling is refused, naming modules.json).
Result<std::vector<std::pair<std::string, std::string>>> inspect_decoder_embedder(const std::filesystem::path& dir,
                                                                                  const nlohmann::json& config);

}  // namespace fathom::models::decoder
