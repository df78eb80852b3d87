#pragma once
// What happens to a model's rows after the model: a pooled vector gets Matryoshka truncation, then L2
// normalisation; per-token outputs (bge-m3) become lexical weights or multi-vectors.
#include <cstdint>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "base/error.h"

namespace fathom::engine {

// Keeps the first `dimensions` values (when set; must be 1..v.size()), then L2-normalises when `normalize`
// (a zero vector stays zero).
void finish_embedding(std::vector<float>& v, std::optional<int> dimensions, bool normalize);

// Checks a requested `dimensions` against what the model allows: `declared` lists the Matryoshka sizes;
// when it holds only the full size (is_matryoshka without a list) any size 1..full is allowed. The error
// (param "dimensions") states the allowed values.
Status check_dimensions(const std::string& model, int requested, bool supports_matryoshka,
                        const std::vector<int>& declared, int full);

// Lexical weights of one input from its token ids and the sparse head's weight at every position
// (Embedder::embed_tokens kSparse: same length as `ids`): for each token id with a positive weight, the
// largest weight it has anywhere in the input, as FlagEmbedding's lexical_weights. Sorted by token id.
std::vector<std::pair<int32_t, float>> lexical_weights(const std::vector<int32_t>& ids,
                                                       const std::vector<float>& weights);

// Multi-vector rows of one input: `rows` holds consecutive vectors of `width` floats (Embedder::embed_tokens
// kColbert); each is L2-normalised when `normalize`.
std::vector<std::vector<float>> multi_vectors(const std::vector<float>& rows, int width, bool normalize);

}  // namespace fathom::engine
