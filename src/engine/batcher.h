#pragma once
// Batch formation under a token budget.
//
// A batch is a prefix of the FIFO queue (requests are never reordered, so none waits behind later ones).
// Its cost is the sum of its sequences' token counts: fathom's embedding models run ragged (packed,
// unpadded) batches, so that is the work a batch does and the size the models plan their workspaces and
// CUDA-graph buckets for (LoadOptions::max_batch_tokens). Counting padded tokens (count * longest) instead
// made batches several times smaller than the budget whenever one long input sat among short ones. A single
// sequence longer than the budget still forms a batch of one (it was already validated against the model's
// max input length).
#include <algorithm>
#include <cstddef>

namespace fathom::engine {

struct BatchLimits {
  int max_batch_tokens = 16384;  // tokens of one batch, summed over its sequences
  int max_batch_size = 256;      // sequences in one batch
};

// How many leading elements of [begin, end) form the next batch; `length(element)` gives its token count.
// Returns 0 only for an empty range.
template <typename It, typename LengthFn>
std::size_t plan_batch(It begin, It end, LengthFn length, const BatchLimits& limits) {
  std::size_t count = 0;
  std::size_t tokens = 0;
  const std::size_t budget = static_cast<std::size_t>(std::max(1, limits.max_batch_tokens));
  const std::size_t max_size = static_cast<std::size_t>(std::max(1, limits.max_batch_size));
  for (It it = begin; it != end && count < max_size; ++it) {
    const std::size_t len = static_cast<std::size_t>(length(*it));
    if (count > 0 && tokens + len > budget) break;
    tokens += len;
    ++count;
  }
  return count;
}

}  // namespace fathom::engine
