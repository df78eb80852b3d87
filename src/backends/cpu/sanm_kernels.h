#pragma once
// CPU kernels of the SAN-M (FSMN memory) encoder family (ops/fsmn.h, ops/activation.h relu). f32, row-major,
// inputs validated by the ops layer.
#include <cstdint>

namespace fathom::cpu {

// y = max(x, 0) over n elements (y may alias x).
void relu(const float* x, float* y, int64_t n);

// FSMN memory over packed sequences: for each sequence [cu[b], cu[b+1]) and channel c,
//   out[t, c] = v(t, c) + sum_k w[c * K + k] * v(t + k - left_pad, c)   (zero outside the sequence),
// v(t, c) = src[t * ld + column + c]. out: [T, d] contiguous, must not alias src.
void fsmn_memory(const float* src, int64_t ld, int64_t column, const float* w, int kernel, int left_pad,
                 const int32_t* cu, int batch, int64_t d, float* out);

}  // namespace fathom::cpu
