#include "models/decoder/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

namespace fathom::models::decoder {

Status validate_sampling(const SamplingParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f)
    return make_error(ErrorCode::kInvalidArgument, "temperature must be a finite number >= 0", "temperature");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f))
    return make_error(ErrorCode::kInvalidArgument, "top_p must be in (0, 1]", "top_p");
  if (p.top_k < 0) return make_error(ErrorCode::kInvalidArgument, "top_k must be >= 0", "top_k");
  return Status::Ok();
}

int32_t argmax(std::span<const float> logits) {
  if (logits.empty()) return -1;
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

Sampler::Sampler(const SamplingParams& params) : params_(params) {
  rng_.seed(params.seed ? *params.seed : static_cast<uint64_t>(std::random_device{}()) << 32 | std::random_device{}());
}

int32_t Sampler::next(std::span<const float> logits) {
  if (greedy() || logits.size() <= 1) return argmax(logits);
  const std::size_t n = logits.size();
  order_.resize(n);
  std::iota(order_.begin(), order_.end(), 0);
  std::size_t keep = n;
  if (params_.top_k > 0 && static_cast<std::size_t>(params_.top_k) < n) keep = static_cast<std::size_t>(params_.top_k);
  auto by_logit = [&](int32_t a, int32_t b) {
    const float la = logits[static_cast<std::size_t>(a)], lb = logits[static_cast<std::size_t>(b)];
    return la > lb || (la == lb && a < b);
  };
  if (keep < n) {
    std::partial_sort(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(keep), order_.end(), by_logit);
  } else {
    std::sort(order_.begin(), order_.end(), by_logit);
  }
  // Softmax of logits / temperature over the kept tokens (sorted, most probable first).
  const double inv_t = 1.0 / params_.temperature;
  const double top = logits[static_cast<std::size_t>(order_[0])] * inv_t;
  probs_.resize(keep);
  double sum = 0.0;
  for (std::size_t i = 0; i < keep; ++i) {
    probs_[i] = std::exp(logits[static_cast<std::size_t>(order_[i])] * inv_t - top);
    sum += probs_[i];
  }
  if (params_.top_p < 1.0f) {
    // The smallest prefix whose mass reaches top_p (at least one token).
    double mass = 0.0;
    std::size_t cut = keep;
    for (std::size_t i = 0; i < keep; ++i) {
      mass += probs_[i] / sum;
      if (mass >= params_.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    sum = 0.0;
    for (std::size_t i = 0; i < keep; ++i) sum += probs_[i];
  }
  const double u = std::uniform_real_distribution<double>(0.0, sum)(rng_);
  double acc = 0.0;
  for (std::size_t i = 0; i < keep; ++i) {
    acc += probs_[i];
    if (u < acc) return order_[i];
  }
  return order_[keep - 1];
}

}  // namespace fathom::models::decoder
