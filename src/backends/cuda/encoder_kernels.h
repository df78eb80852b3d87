#pragma once
// Raw CUDA kernels of the newer encoder families (kernels/encoder.cu): rotary position embedding and the
// gated MLP activation. Same conventions as kernels.h: parameters validated by the ops layer, f32/f16/bf16
// elements with f32 arithmetic, asynchronous on `stream`, capturable, exceptions for bad parameters.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "base/dtype.h"

namespace fathom::cuda {

// In place on q and k of a fused qkv [tokens, 3 * heads * head_dim] (ld = 3 * heads * head_dim): the
// rotate-half rotary embedding of ops::rotary_qk with angle = positions[t] * inv_freq[i] (device arrays).
void rotary_qk(DType dtype, void* qkv, const int32_t* positions, int tokens, int heads, int head_dim, int rotary_dim,
               const float* inv_freq, cudaStream_t stream);
// y[r, :n] = act(a) * b or a * act(b) over x[r] = a | b ([rows, 2n]); act 0 SiLU, 1 exact GELU, 2 tanh GELU.
void gated_activation(DType dtype, const void* x, void* y, int64_t rows, int64_t n, int act, bool activate_first,
                      cudaStream_t stream);

}  // namespace fathom::cuda
