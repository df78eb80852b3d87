#pragma once
// The BERT family as an embedding model: BertModel (and checkpoints saved from BERT heads, whose
// encoder is used), RobertaModel, XLMRobertaModel. Tensor names with prefix "bert.", "roberta." or none.
//
// embed() packs all sequences into one variable-length batch without padding, runs embeddings +
// encoder, and pools per the sentence-transformers config (mean when none). Weights are converted to the
// compute dtype at load (f32 on CPU). Token-type ids are all zero. One thread at a time calls embed().
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "models/model.h"
#include "models/registry.h"

namespace fathom::models::bert {

// Loads DIR as `info`'s architecture; `roberta` selects RoBERTa position ids (pad_token_id + 1 + i).
// `architecture` is the matched config.json architecture (or model_type) for reporting.
Result<std::unique_ptr<Model>> load_bert_family(const std::filesystem::path& dir, const nlohmann::json& config,
                                                const LoadOptions& options, const ModelInfo& info, bool roberta);

}  // namespace fathom::models::bert
