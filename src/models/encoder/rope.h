#pragma once
// Rotary frequency tables of the encoder families, computed at load in f32 as the reference
// implementations compute them: inv_freq[i] = 1 / base^(2i / dim) for i < dim / 2.
#include <cmath>
#include <vector>

namespace fathom::models::encoder {

inline std::vector<float> rope_inv_freq(int dim, double base) {
  std::vector<float> out(static_cast<std::size_t>(dim / 2));
  for (int i = 0; i < dim / 2; ++i)
    out[static_cast<std::size_t>(i)] =
        1.0f / std::pow(static_cast<float>(base), static_cast<float>(2 * i) / static_cast<float>(dim));
  return out;
}

// NTK-scaled frequencies (GTE v1.5 `rope_scaling: {"type": "ntk", "factor": s}`): the base becomes
// base * s and every frequency is divided by s^(2 / dim).
inline std::vector<float> rope_inv_freq_ntk(int dim, double base, double factor) {
  std::vector<float> out = rope_inv_freq(dim, base * factor);
  const float div = static_cast<float>(std::pow(factor, 2.0 / dim));
  for (float& f : out) f /= div;
  return out;
}

}  // namespace fathom::models::encoder
