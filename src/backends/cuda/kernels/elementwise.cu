// dtype conversion, exact GELU, L2 normalisation.
#include "backends/cuda/blas.h"
#include "backends/cuda/kernels.h"
#include "backends/cuda/kernels/common.cuh"

namespace fathom::cuda {
namespace {
using namespace detail;

template <typename S, typename D>
__global__ void convert_kernel(const S* __restrict__ src, D* __restrict__ dst, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    dst[i] = from_f32<D>(to_f32(src[i]));
}

template <typename T>
__global__ void gelu_kernel(T* data, int rows, int cols, int ld) {
  for (int r = blockIdx.y; r < rows; r += gridDim.y) {
    T* row = data + static_cast<std::size_t>(r) * ld;
    for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += gridDim.x * blockDim.x) {
      const float x = to_f32(row[c]);
      row[c] = from_f32<T>(0.5f * x * (1.f + erff(x * 0.70710678118654752f)));
    }
  }
}

__global__ void l2_kernel(float* data, int cols, int ld) {
  __shared__ float scratch[32];
  float* row = data + static_cast<std::size_t>(blockIdx.x) * ld;
  float s = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) s += row[c] * row[c];
  s = block_sum(s, scratch);
  const float inv = 1.f / fmaxf(sqrtf(s), 1e-12f);
  for (int c = threadIdx.x; c < cols; c += blockDim.x) row[c] *= inv;
}

int grid_for(std::size_t n, int block) {
  std::size_t g = (n + block - 1) / block;
  return static_cast<int>(g > 65536 ? 65536 : (g == 0 ? 1 : g));
}

}  // namespace

void convert(DType sd, const void* src, DType dd, void* dst, std::size_t n, cudaStream_t stream) {
  if (n == 0) return;
  require(src && dst, "convert", "null pointer");
  dispatch_float(sd, "convert", [&](auto s) {
    using S = decltype(s);
    dispatch_float(dd, "convert", [&](auto d) {
      using D = decltype(d);
      convert_kernel<S, D><<<grid_for(n, 256), 256, 0, stream>>>(static_cast<const S*>(src), static_cast<D*>(dst), n);
    });
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

void gelu_erf_inplace(DType dtype, void* data, int rows, int cols, int ld, cudaStream_t stream) {
  require(rows > 0 && cols > 0 && ld >= cols, "gelu", "bad shape");
  dispatch_float(dtype, "gelu", [&](auto t) {
    using T = decltype(t);
    dim3 grid((cols + 255) / 256, rows < 65535 ? rows : 65535);
    gelu_kernel<T><<<grid, 256, 0, stream>>>(static_cast<T*>(data), rows, cols, ld);
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

void l2_normalize(float* data, int rows, int cols, int ld, cudaStream_t stream) {
  require(rows >= 0 && cols > 0 && ld >= cols && data, "l2_normalize", "bad shape");
  if (rows == 0) return;
  l2_kernel<<<rows, 256, 0, stream>>>(data, cols, ld);
  FATHOM_CUDA_CHECK_LAUNCH();
}

}  // namespace fathom::cuda
