#pragma once
// Comparing embeddings in tests.
#include <cmath>
#include <cstddef>
#include <vector>

namespace fathom::testing {

// Cosine similarity of a[0..n) and b[0..n) in double precision; -2 (below any threshold) when n is 0.
inline double cosine(const float* a, const float* b, std::size_t n) {
  if (n == 0) return -2;
  double dot = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < n; ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  return dot / std::sqrt(na * nb + 1e-30);
}

// The same for two vectors; -2 when their sizes differ or they are empty.
inline double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() ? cosine(a.data(), b.data(), a.size()) : -2;
}

}  // namespace fathom::testing
