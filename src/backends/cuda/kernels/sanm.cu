// SAN-M encoder kernels: ReLU and the FSMN memory block (depthwise convolution over time within sequences).
#include <cstdint>

#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/sanm_kernels.h"

namespace fathom::cuda {
namespace {
using namespace detail;

template <typename T>
__global__ void relu_kernel(const T* x, T* y, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    y[i] = from_f32<T>(fmaxf(to_f32(x[i]), 0.f));
}

// One block per row t; the row's sequence is found by binary search over cu.
template <typename T>
__global__ void fsmn_kernel(FsmnParams p) {
  const int t = blockIdx.x;
  int lo = 0, hi = p.batch;  // find b with cu[b] <= t < cu[b + 1]
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (p.cu[mid] <= t) lo = mid; else hi = mid;
  }
  const int s0 = p.cu[lo], s1 = p.cu[lo + 1];
  const T* src = static_cast<const T*>(p.src);
  const T* w = static_cast<const T*>(p.w);
  T* out = static_cast<T*>(p.out) + static_cast<std::size_t>(t) * p.d;
  for (int c = threadIdx.x; c < p.d; c += blockDim.x) {
    float acc = to_f32(src[static_cast<std::size_t>(t) * p.ld + p.column + c]);
    for (int k = 0; k < p.kernel; ++k) {
      const int s = t + k - p.left_pad;
      if (s < s0 || s >= s1) continue;
      acc += to_f32(w[c * p.kernel + k]) * to_f32(src[static_cast<std::size_t>(s) * p.ld + p.column + c]);
    }
    out[c] = from_f32<T>(acc);
  }
}

}  // namespace

void relu(DType dtype, const void* x, void* y, std::size_t n, cudaStream_t stream) {
  if (n == 0) return;
  const std::size_t blocks = (n + 255) / 256;
  const int grid = static_cast<int>(blocks < 4096 ? blocks : 4096);
  dispatch_float(dtype, "relu", [&](auto tag) {
    using T = decltype(tag);
    relu_kernel<T><<<grid, 256, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y), n);
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

void fsmn_memory(const FsmnParams& p, cudaStream_t stream) {
  require(p.kernel > 0 && p.d > 0 && p.batch >= 0 && p.total >= 0, "fsmn_memory", "bad kernel, width or batch");
  if (p.total == 0 || p.batch == 0) return;
  const int threads = p.d >= 256 ? 256 : ((p.d + 31) / 32) * 32;
  dispatch_float(p.dtype, "fsmn_memory", [&](auto tag) {
    using T = decltype(tag);
    fsmn_kernel<T><<<p.total, threads, 0, stream>>>(p);
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

}  // namespace fathom::cuda
