// Rotary position embedding and gated MLP activations (encoder_kernels.h).
#include <cmath>

#include "backends/cuda/encoder_kernels.h"
#include "backends/cuda/kernels/common.cuh"

namespace fathom::cuda {
namespace {
using namespace detail;

// One thread per (token, pair index i, head, q|k).
template <typename T>
__global__ void rotary_kernel(T* qkv, const int32_t* positions, int tokens, int heads, int head_dim, int half,
                              const float* inv_freq) {
  griddep_wait();  // launched with launch_pdl
  const std::size_t per_token = static_cast<std::size_t>(half) * heads * 2;
  const std::size_t n = per_token * tokens;
  const std::size_t hidden = static_cast<std::size_t>(heads) * head_dim;
  for (std::size_t idx = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; idx < n;
       idx += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const int t = static_cast<int>(idx / per_token);
    std::size_t r = idx % per_token;
    const int i = static_cast<int>(r % half);
    r /= half;
    const int h = static_cast<int>(r % heads);
    const int part = static_cast<int>(r / heads);
    T* x = qkv + static_cast<std::size_t>(t) * 3 * hidden + part * hidden + static_cast<std::size_t>(h) * head_dim;
    const float angle = static_cast<float>(positions[t]) * inv_freq[i];
    float s, c;
    sincosf(angle, &s, &c);
    const float x1 = to_f32(x[i]), x2 = to_f32(x[i + half]);
    x[i] = from_f32<T>(x1 * c - x2 * s);
    x[i + half] = from_f32<T>(x2 * c + x1 * s);
  }
}

__device__ __forceinline__ float activate(float v, int act) {
  if (act == 0) return v / (1.f + expf(-v));
  return gelu_value(v, act == 2);
}

template <typename T>
__global__ void gated_kernel(const T* x, T* y, int64_t rows, int64_t n, int act, bool activate_first) {
  griddep_wait();  // launched with launch_pdl
  const std::size_t total = static_cast<std::size_t>(rows) * n;
  for (std::size_t idx = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const std::size_t r = idx / n, c = idx % n;
    const float a = to_f32(x[r * 2 * n + c]), b = to_f32(x[r * 2 * n + n + c]);
    y[idx] = from_f32<T>(activate_first ? activate(a, act) * b : a * activate(b, act));
  }
}

int grid_for(std::size_t n, int block) {
  const std::size_t g = (n + block - 1) / block;
  return static_cast<int>(g > 65536 ? 65536 : (g == 0 ? 1 : g));
}

}  // namespace

void rotary_qk(DType dtype, void* qkv, const int32_t* positions, int tokens, int heads, int head_dim, int rotary_dim,
               const float* inv_freq, cudaStream_t stream) {
  require(qkv && positions && inv_freq, "rotary_qk", "null pointer");
  require(rotary_dim >= 2 && rotary_dim % 2 == 0 && rotary_dim <= head_dim, "rotary_qk", "bad rotary_dim");
  if (tokens == 0) return;
  const int half = rotary_dim / 2;
  const std::size_t n = static_cast<std::size_t>(tokens) * heads * half * 2;
  constexpr int kBlock = 256;
  dispatch_float(dtype, "rotary_qk", [&](auto t) {
    using T = decltype(t);
    launch_pdl(rotary_kernel<T>, dim3(grid_for(n, kBlock)), dim3(kBlock), 0, stream, static_cast<T*>(qkv), positions,
               tokens, heads, head_dim, half, inv_freq);
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

void gated_activation(DType dtype, const void* x, void* y, int64_t rows, int64_t n, int act, bool activate_first,
                      cudaStream_t stream) {
  require(x && y, "gated_activation", "null pointer");
  const std::size_t total = static_cast<std::size_t>(rows) * n;
  if (total == 0) return;
  constexpr int kBlock = 256;
  dispatch_float(dtype, "gated_activation", [&](auto t) {
    using T = decltype(t);
    launch_pdl(gated_kernel<T>, dim3(grid_for(total, kBlock)), dim3(kBlock), 0, stream, static_cast<const T*>(x),
               static_cast<T*>(y), rows, n, act, activate_first);
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

}  // namespace fathom::cuda
