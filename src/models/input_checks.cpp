#include "models/input_checks.h"

#include <string>

namespace fathom::models {

Status check_token_sequences(const std::vector<std::vector<int32_t>>& sequences, int max_tokens, int64_t vocab) {
  for (std::size_t s = 0; s < sequences.size(); ++s) {
    const auto& seq = sequences[s];
    if (seq.empty()) return make_error(ErrorCode::kInvalidArgument, "input " + std::to_string(s) + " has no tokens");
    if (static_cast<int64_t>(seq.size()) > max_tokens)
      return make_error(ErrorCode::kTooLarge, "input " + std::to_string(s) + " has " + std::to_string(seq.size()) +
                                                  " tokens, more than the model's limit of " + std::to_string(max_tokens));
    for (int32_t id : seq)
      if (id < 0 || id >= vocab)
        return make_error(ErrorCode::kInvalidArgument, "input " + std::to_string(s) + ": token id " + std::to_string(id) +
                                                           " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
  }
  return Status::Ok();
}

}  // namespace fathom::models
