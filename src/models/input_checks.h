#pragma once
// Checks shared by the models' batch entry points (Embedder::embed), so every family refuses the same bad
// batches with the same messages.
#include <cstdint>
#include <vector>

#include "base/error.h"

namespace fathom::models {

// Every sequence non-empty (kInvalidArgument), at most `max_tokens` long (kTooLarge), every id in
// [0, vocab) (kInvalidArgument); messages name the input's index.
Status check_token_sequences(const std::vector<std::vector<int32_t>>& sequences, int max_tokens, int64_t vocab);

}  // namespace fathom::models
