#pragma once
// What config.json says about Matryoshka (truncatable) embeddings, whatever the family: `matryoshka_dimensions`
// (the sizes the model was trained to be cut to) and `is_matryoshka` (any size up to the hidden size). A
// checkpoint that declares neither does not accept the embeddings request's `dimensions`; users of a model
// trained that way whose config is silent (Qwen3-Embedding) add `"is_matryoshka": true` to its config.json.
// Shared by the BERT family, the encoder runtime and the decoder embedders.
#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace fathom::models {

struct MatryoshkaDims {
  bool is_matryoshka = false;
  std::vector<int> dimensions;  // as declared (each in [1, hidden])

  bool supported() const { return is_matryoshka || !dimensions.empty(); }
  // Embedder::matryoshka_dimensions: the declared list, else {hidden} for is_matryoshka, else empty.
  std::vector<int> list(int hidden) const {
    if (!dimensions.empty()) return dimensions;
    if (is_matryoshka) return {hidden};
    return {};
  }
};

// Reads both keys from `config` (`file` names it in messages); kLoadFailed for a list that is not integers in
// [1, hidden] or an is_matryoshka that is not a boolean.
Result<MatryoshkaDims> parse_matryoshka(const nlohmann::json& config, const std::filesystem::path& file, int hidden);

}  // namespace fathom::models
