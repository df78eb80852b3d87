#pragma once
// bge-m3's FlagEmbedding heads beside an XLM-R encoder: `sparse_linear.pt` (Linear(hidden, 1): lexical
// weights, relu(w . h + b) per token) and `colbert_linear.pt` (Linear(hidden, D): one multi-vector row per
// token after the first). FlagEmbedding uses them only together, and so does fathom: a directory with both
// files serves embedding_type sparse and colbert beside dense; with one of them only, loading fails naming
// the missing one. The files are torch.save state dicts, read without executing anything
// (formats/torch_state_dict.h).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "base/error.h"
#include "formats/tokenizer/tokenizer.h"
#include "layers/linear.h"
#include "models/weights.h"

namespace fathom::models {

struct M3Heads {
  layers::Linear sparse;   // weight [1, hidden], bias [1]
  layers::Linear colbert;  // weight [D, hidden], bias [D]
  int colbert_dim = 0;
  // Token ids whose lexical weight is always 0: the tokenizer's cls, eos, pad and unk tokens (as named by
  // tokenizer_config.json), FlagEmbedding's unused_tokens.
  std::vector<int32_t> ignored_ids;
};

// Loads the heads of `dir` into `weights` (converted to its compute dtype), checking their shapes against
// `hidden`. nullopt when the directory holds neither file. Errors (kLoadFailed) name the file at fault.
Result<std::optional<M3Heads>> load_m3_heads(const std::filesystem::path& dir, int64_t hidden, WeightStore& weights,
                                             const formats::Tokenizer& tokenizer);

}  // namespace fathom::models
