#pragma once
// Shared device helpers: f32 <-> element conversions, warp/block reductions, GELU, programmatic dependent
// launch and the dtype switch.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <string>
#include <utility>

#include "backends/cuda/check.h"
#include "base/dtype.h"

namespace fathom::cuda::detail {

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, <= 1024). `scratch` holds 32 floats. All threads
// receive the result.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float t = lane < nwarps ? scratch[lane] : 0.f;
  return warp_sum(t);
}

// GELU of one value: the tanh approximation when `use_tanh`, else the exact erf form.
__device__ __forceinline__ float gelu_value(float v, bool use_tanh) {
  return use_tanh ? 0.5f * v * (1.f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)))
                  : 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
}

// Programmatic dependent launch (Hopper and later). A kernel launched with launch_pdl() may be scheduled
// while the kernel before it on the stream is still finishing; it must call griddep_wait() before it reads
// anything an earlier kernel wrote and before it writes anything an earlier kernel reads. Work before the
// wait may only touch data no earlier kernel of the stream writes (weights, say). On older GPUs, and for
// kernels launched normally, griddep_wait() returns at once.
__device__ __forceinline__ void griddep_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// True when the current device supports programmatic dependent launch (compute capability 9.0 or later).
bool pdl_supported();

template <typename... KernelArgs, typename... Args>
void launch_pdl(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, std::size_t smem, cudaStream_t stream,
                Args&&... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl_supported() ? 1 : 0;
  FATHOM_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
}

// Calls f(T{}) with T the element type of `d`.
template <typename F>
void dispatch_float(DType d, const char* op, F&& f) {
  switch (d) {
    case DType::kF32: f(float{}); break;
    case DType::kF16: f(__half{}); break;
    case DType::kBF16: f(__nv_bfloat16{}); break;
    default:
      throw Exception(ErrorCode::kUnsupported,
                      std::string(op) + ": dtype " + std::string(dtype_name(d)) + " is not supported on CUDA");
  }
}

inline void require(bool cond, const char* op, const std::string& what) {
  if (!cond) throw Exception(ErrorCode::kInvalidArgument, std::string(op) + ": " + what);
}

}  // namespace fathom::cuda::detail
