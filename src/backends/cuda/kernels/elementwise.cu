// dtype conversion, exact GELU, L2 normalisation.
#include <cstdint>

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
      row[c] = from_f32<T>(gelu_value(to_f32(row[c]), false));
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

template <typename T>
__global__ void l2_rows_kernel(const T* in, T* out, int cols, float eps) {
  __shared__ float scratch[32];
  const T* row = in + static_cast<std::size_t>(blockIdx.x) * cols;
  T* orow = out + static_cast<std::size_t>(blockIdx.x) * cols;
  float s = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) { const float v = to_f32(row[c]); s += v * v; }
  s = block_sum(s, scratch);
  const float inv = 1.f / fmaxf(sqrtf(s), eps);
  for (int c = threadIdx.x; c < cols; c += blockDim.x) orow[c] = from_f32<T>(to_f32(row[c]) * inv);
}

template <typename T>
__global__ void bias_add_kernel(T* x, const T* bias, std::size_t n, int cols) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    x[i] = from_f32<T>(to_f32(x[i]) + to_f32(bias[i % cols]));
}

template <typename T>
__global__ void add_kernel(const T* a, const T* b, T* out, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    out[i] = from_f32<T>(to_f32(a[i]) + to_f32(b[i]));
}

template <typename T>
__global__ void gelu_flat_kernel(const T* x, T* y, std::size_t n, bool use_tanh) {
  griddep_wait();  // launched with launch_pdl: everything below may depend on the previous kernel
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    y[i] = from_f32<T>(gelu_value(to_f32(x[i]), use_tanh));
  }
}

// 8 elements per thread through 16-byte accesses (16-bit types; x, y 16-byte aligned, n % 8 == 0).
template <typename T>
__global__ void gelu_vec8_kernel(const uint4* x, uint4* y, std::size_t n8, bool use_tanh) {
  griddep_wait();  // launched with launch_pdl
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n8;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    uint4 u = x[i];
    T* e = reinterpret_cast<T*>(&u);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      e[j] = from_f32<T>(gelu_value(to_f32(e[j]), use_tanh));
    }
    y[i] = u;
  }
}

template <typename T>
__global__ void softmax_kernel(const T* x, T* y, int cols) {
  __shared__ float scratch[32];
  const T* row = x + static_cast<std::size_t>(blockIdx.x) * cols;
  T* orow = y + static_cast<std::size_t>(blockIdx.x) * cols;
  float mx = -INFINITY;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) mx = fmaxf(mx, to_f32(row[c]));
  // block max through the sum helper's scratch: reduce max per warp, then across warps
  mx = warp_max(mx);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = mx;
  __syncthreads();
  mx = (threadIdx.x & 31) < (blockDim.x >> 5) ? scratch[threadIdx.x & 31] : -INFINITY;
  mx = warp_max(mx);
  float s = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) s += expf(to_f32(row[c]) - mx);
  s = block_sum(s, scratch);
  const float inv = 1.f / s;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) orow[c] = from_f32<T>(expf(to_f32(row[c]) - mx) * inv);
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

void l2_normalize_rows(DType dtype, const void* in, void* out, int rows, int cols, float eps, cudaStream_t stream) {
  require(rows >= 0 && cols > 0 && in && out, "l2_normalize", "bad shape");
  if (rows == 0) return;
  dispatch_float(dtype, "l2_normalize", [&](auto t) {
    using T = decltype(t);
    l2_rows_kernel<T><<<rows, 256, 0, stream>>>(static_cast<const T*>(in), static_cast<T*>(out), cols, eps);
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

void bias_add(DType dtype, void* x, const void* bias, std::size_t rows, int cols, cudaStream_t stream) {
  const std::size_t n = rows * static_cast<std::size_t>(cols);
  if (n == 0) return;
  dispatch_float(dtype, "bias_add", [&](auto t) {
    using T = decltype(t);
    bias_add_kernel<T><<<grid_for(n, 256), 256, 0, stream>>>(static_cast<T*>(x), static_cast<const T*>(bias), n, cols);
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

void add(DType dtype, const void* a, const void* b, void* out, std::size_t n, cudaStream_t stream) {
  if (n == 0) return;
  dispatch_float(dtype, "add", [&](auto t) {
    using T = decltype(t);
    add_kernel<T><<<grid_for(n, 256), 256, 0, stream>>>(static_cast<const T*>(a), static_cast<const T*>(b),
                                                        static_cast<T*>(out), n);
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

void gelu(DType dtype, const void* x, void* y, std::size_t n, bool use_tanh, cudaStream_t stream) {
  if (n == 0) return;
  dispatch_float(dtype, "gelu", [&](auto t) {
    using T = decltype(t);
    if constexpr (sizeof(T) == 2) {
      if (n % 8 == 0 && reinterpret_cast<std::uintptr_t>(x) % 16 == 0 && reinterpret_cast<std::uintptr_t>(y) % 16 == 0) {
        launch_pdl(gelu_vec8_kernel<T>, dim3(grid_for(n / 8, 256)), dim3(256), 0, stream,
                   static_cast<const uint4*>(x), static_cast<uint4*>(y), n / 8, use_tanh);
        return;
      }
    }
    launch_pdl(gelu_flat_kernel<T>, dim3(grid_for(n, 256)), dim3(256), 0, stream, static_cast<const T*>(x),
               static_cast<T*>(y), n, use_tanh);
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

namespace {
template <typename T>
__global__ void tanh_kernel(const T* x, T* y, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    y[i] = from_f32<T>(tanhf(to_f32(x[i])));
}
}  // namespace

void tanh(DType dtype, const void* x, void* y, std::size_t n, cudaStream_t stream) {
  if (n == 0) return;
  dispatch_float(dtype, "tanh", [&](auto t) {
    using T = decltype(t);
    tanh_kernel<T><<<grid_for(n, 256), 256, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y), n);
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

void softmax_rows(DType dtype, const void* x, void* y, int rows, int cols, cudaStream_t stream) {
  require(rows >= 0 && cols > 0, "softmax", "bad shape");
  if (rows == 0) return;
  dispatch_float(dtype, "softmax", [&](auto t) {
    using T = decltype(t);
    softmax_kernel<T><<<rows, 256, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y), cols);
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

}  // namespace fathom::cuda
