#pragma once
// Raw-pointer CUDA kernels of the SAN-M encoder family (ops/fsmn.h, ops/activation.h relu). Conventions of
// kernels.h: parameter struct and stream, asynchronous, fathom::Exception on bad parameters or launch
// failures, capturable (sequence boundaries read from device memory). f32, f16, bf16; arithmetic in f32.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "base/dtype.h"

namespace fathom::cuda {

// y = max(x, 0) over n elements (y may alias x).
void relu(DType dtype, const void* x, void* y, std::size_t n, cudaStream_t stream);

// out[t, c] = v(t, c) + sum_k w[c, k] v(t + k - left_pad, c) within t's sequence (see cpu::fsmn_memory);
// `cu` (batch + 1 prefix sums) on the device.
struct FsmnParams {
  DType dtype = DType::kF32;
  const void* src = nullptr;
  int64_t ld = 0, column = 0;
  const void* w = nullptr;  // [d, kernel]
  int kernel = 0, left_pad = 0;
  const int32_t* cu = nullptr;
  int batch = 0;
  int total = 0;  // rows (cu[batch], known on the host)
  int d = 0;
  void* out = nullptr;  // [total, d]
};
void fsmn_memory(const FsmnParams& p, cudaStream_t stream);

}  // namespace fathom::cuda
