#pragma once
// Batch formation under a token budget.
//
// A batch is a prefix of the FIFO queue (requests are never reordered, so none waits behind later ones).
// Its cost is counted as padded tokens: count * longest sequence, which bounds both ragged and padded
// model implementations by the same budget. A single sequence longer than the budget still forms a batch
// of one (it was already validated against the model's max input length).
#include <algorithm>
#include <cstddef>

namespace fathom::engine {

struct BatchLimits {
  int max_batch_tokens = 16384;  // padded tokens (count * longest) of one batch
  int max_batch_size = 256;      // sequences in one batch
};

// Padded cost of a batch of `count` sequences whose longest has `longest` tokens.
inline std::size_t padded_tokens(std::size_t count, std::size_t longest) { return count * longest; }

// How many leading elements of [begin, end) form the next batch; `length(element)` gives its token count.
// Returns 0 only for an empty range.
template <typename It, typename LengthFn>
std::size_t plan_batch(It begin, It end, LengthFn length, const BatchLimits& limits) {
  std::size_t count = 0;
  std::size_t longest = 0;
  const std::size_t budget = static_cast<std::size_t>(std::max(1, limits.max_batch_tokens));
  const std::size_t max_size = static_cast<std::size_t>(std::max(1, limits.max_batch_size));
  for (It it = begin; it != end && count < max_size; ++it) {
    std::size_t len = static_cast<std::size_t>(length(*it));
    std::size_t next_longest = std::max(longest, len);
    if (count > 0 && padded_tokens(count + 1, next_longest) > budget) break;
    longest = next_longest;
    ++count;
  }
  return count;
}

}  // namespace fathom::engine
