#pragma once
// Next-token choice from one row of logits: greedy (argmax, lowest id on ties) or sampling with
// temperature, top-k and top-p (applied in that order, as transformers' logits warpers do), drawn from a
// per-request seeded generator (std::mt19937_64: a given seed reproduces fathom's draws, not another
// library's).
#include <cstdint>
#include <optional>
#include <random>
#include <span>

#include "base/error.h"

namespace fathom::models::decoder {

struct SamplingParams {
  float temperature = 0.0f;     // 0: greedy; > 0: logits / temperature before sampling
  float top_p = 1.0f;           // (0, 1]: keep the most probable tokens whose mass reaches top_p
  int top_k = 0;                // 0: off; > 0: keep the k most probable tokens
  std::optional<uint64_t> seed; // unset: a seed from std::random_device
};

// kInvalidArgument naming the field: temperature < 0 or not finite, top_p outside (0, 1], top_k < 0.
Status validate_sampling(const SamplingParams& params);

// Index of the largest value (the first one on ties); -1 for an empty row.
int32_t argmax(std::span<const float> logits);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  bool greedy() const { return params_.temperature == 0.0f || params_.top_k == 1; }
  // The next token for `logits` ([vocab] f32). Advances the generator when sampling.
  int32_t next(std::span<const float> logits);

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<int32_t> order_;
  std::vector<double> probs_;
};

}  // namespace fathom::models::decoder
