// Linear layers over a few rows (decode steps, single short requests): y = act(x * w^T + bias) with the
// activation fused, launched with programmatic dependent launch so the weights stream in while the
// kernel before it finishes. Each warp computes two output columns for up to 16 rows, every lane taking a
// 16-byte slice of the reduction dimension; the rows of x sit in shared memory.
#include <cstdint>

#include "backends/cuda/kernels.h"
#include "backends/cuda/kernels/common.cuh"

namespace fathom::cuda {
namespace {
using namespace detail;

constexpr int kWarps = 4;   // per block
constexpr int kCols = 2;    // output columns per warp
constexpr int kMaxSmemBytes = 96 * 1024;

__device__ __forceinline__ float dot16(const uint4& a, const uint4& b, float) {
  const float* x = reinterpret_cast<const float*>(&a);
  const float* y = reinterpret_cast<const float*>(&b);
  return x[0] * y[0] + x[1] * y[1] + x[2] * y[2] + x[3] * y[3];
}
__device__ __forceinline__ float dot16(const uint4& a, const uint4& b, __half) {
  const __half2* x = reinterpret_cast<const __half2*>(&a);
  const __half2* y = reinterpret_cast<const __half2*>(&b);
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 p = __half22float2(x[i]), q = __half22float2(y[i]);
    s = fmaf(p.x, q.x, s);
    s = fmaf(p.y, q.y, s);
  }
  return s;
}
__device__ __forceinline__ float dot16(const uint4& a, const uint4& b, __nv_bfloat16) {
  const __nv_bfloat162* x = reinterpret_cast<const __nv_bfloat162*>(&a);
  const __nv_bfloat162* y = reinterpret_cast<const __nv_bfloat162*>(&b);
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 p = __bfloat1622float2(x[i]), q = __bfloat1622float2(y[i]);
    s = fmaf(p.x, q.x, s);
    s = fmaf(p.y, q.y, s);
  }
  return s;
}

// Sums V values (a power of two, <= 32) across the warp: afterwards v[0] of lane L holds the total of value
// index L >> (5 - log2 V), and every lane of that group of 32 / V lanes holds the same total.
template <int V>
__device__ __forceinline__ void warp_transpose_sum(float (&v)[V], int lane) {
  int s = 16;
#pragma unroll
  for (int cnt = V; cnt > 1; cnt /= 2, s /= 2) {
    const bool upper = (lane & s) != 0;
#pragma unroll
    for (int j = 0; j < cnt / 2; ++j) {
      const float give = upper ? v[j] : v[j + cnt / 2];
      const float keep = upper ? v[j + cnt / 2] : v[j];
      v[j] = keep + __shfl_xor_sync(0xffffffffu, give, s);
    }
  }
  for (; s > 0; s /= 2) v[0] += __shfl_xor_sync(0xffffffffu, v[0], s);
}

template <int V>
constexpr int log2_of() { return V <= 1 ? 0 : 1 + log2_of<V / 2>(); }

enum Act : int { kNone = 0, kGeluErf = 1, kGeluTanh = 2 };

template <typename T, int MR, int ACT>
__global__ void __launch_bounds__(kWarps * 32)
small_linear_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias, T* __restrict__ y,
                    int m, int n, int k) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  uint4* xs = reinterpret_cast<uint4*>(smem_raw);  // [MR][chunks] rows of x, zero past m
  constexpr int kVec = 16 / sizeof(T);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int col0 = (blockIdx.x * kWarps + warp) * kCols;
  const int row0 = blockIdx.y * MR;
  const int chunks = k / kVec;
  const uint4 zero = make_uint4(0, 0, 0, 0);

  // The first slice of this lane's weights: independent of earlier kernels, so loaded before the wait.
  uint4 wcur[kCols];
#pragma unroll
  for (int j = 0; j < kCols; ++j)
    wcur[j] = (col0 + j < n && lane < chunks)
                  ? __ldg(reinterpret_cast<const uint4*>(w + static_cast<std::size_t>(col0 + j) * k) + lane)
                  : zero;
  griddep_wait();

  for (int i = threadIdx.x; i < MR * chunks; i += blockDim.x) {
    const int r = i / chunks, c = i - r * chunks;
    xs[i] = row0 + r < m ? reinterpret_cast<const uint4*>(x + static_cast<std::size_t>(row0 + r) * k)[c] : zero;
  }
  __syncthreads();
  if (col0 >= n) return;

  constexpr int V = kCols * MR;  // value index j * MR + r
  float acc[V];
#pragma unroll
  for (int i = 0; i < V; ++i) acc[i] = 0.f;
  for (int c = lane; c < chunks; c += 32) {
    uint4 wnext[kCols];
#pragma unroll
    for (int j = 0; j < kCols; ++j)
      wnext[j] = (col0 + j < n && c + 32 < chunks)
                     ? __ldg(reinterpret_cast<const uint4*>(w + static_cast<std::size_t>(col0 + j) * k) + c + 32)
                     : zero;
#pragma unroll
    for (int r = 0; r < MR; ++r) {
      const uint4 xv = xs[r * chunks + c];
#pragma unroll
      for (int j = 0; j < kCols; ++j) acc[j * MR + r] += dot16(wcur[j], xv, T{});
    }
#pragma unroll
    for (int j = 0; j < kCols; ++j) wcur[j] = wnext[j];
  }
  warp_transpose_sum<V>(acc, lane);
  constexpr int kGroup = 5 - log2_of<V>();  // lanes per value: 1 << kGroup
  if ((lane & ((1 << kGroup) - 1)) != 0) return;
  const int idx = lane >> kGroup;
  const int col = col0 + idx / MR, row = row0 + idx % MR;
  if (col >= n || row >= m) return;
  float v = acc[0] + (bias ? to_f32(bias[col]) : 0.f);
  if (ACT != kNone) v = gelu_value(v, ACT == kGeluTanh);
  y[static_cast<std::size_t>(row) * n + col] = from_f32<T>(v);
}

template <typename T, int MR, int ACT>
void launch_rows(const SmallLinearParams& p, cudaStream_t stream) {
  const std::size_t smem = static_cast<std::size_t>(MR) * p.k * sizeof(T);
  if (smem > 48 * 1024) {
    static const cudaError_t set = cudaFuncSetAttribute(small_linear_kernel<T, MR, ACT>,
                                                        cudaFuncAttributeMaxDynamicSharedMemorySize, kMaxSmemBytes);
    FATHOM_CUDA_CHECK(set);
  }
  const dim3 grid((p.n + kWarps * kCols - 1) / (kWarps * kCols), (p.m + MR - 1) / MR);
  launch_pdl(small_linear_kernel<T, MR, ACT>, grid, dim3(kWarps * 32), smem, stream, static_cast<const T*>(p.x),
             static_cast<const T*>(p.w), static_cast<const T*>(p.bias), static_cast<T*>(p.y), p.m, p.n, p.k);
}

template <typename T, int ACT>
void launch_act(const SmallLinearParams& p, cudaStream_t stream) {
  if (p.m <= 1) launch_rows<T, 1, ACT>(p, stream);
  else if (p.m <= 2) launch_rows<T, 2, ACT>(p, stream);
  else if (p.m <= 4) launch_rows<T, 4, ACT>(p, stream);
  else if (p.m <= 8) launch_rows<T, 8, ACT>(p, stream);
  else launch_rows<T, 16, ACT>(p, stream);
}

}  // namespace

bool small_linear_fits(const SmallLinearParams& p) {
  const int vec = 16 / static_cast<int>(dtype_size(p.dtype));
  const int mr = p.m <= 1 ? 1 : p.m <= 2 ? 2 : p.m <= 4 ? 4 : p.m <= 8 ? 8 : 16;
  const auto aligned = [](const void* q) { return (reinterpret_cast<std::uintptr_t>(q) & 15u) == 0; };
  return p.m > 0 && p.m <= kSmallLinearMaxRows && p.n > 0 && p.k > 0 && p.k % vec == 0 && aligned(p.x) &&
         aligned(p.w) && static_cast<std::size_t>(mr) * p.k * dtype_size(p.dtype) <= kMaxSmemBytes &&
         (p.dtype == DType::kF32 || p.dtype == DType::kF16 || p.dtype == DType::kBF16);
}

void small_linear(const SmallLinearParams& p, cudaStream_t stream) {
  require(small_linear_fits(p), "small_linear", "shape, alignment or dtype outside the small-row kernel");
  dispatch_float(p.dtype, "small_linear", [&](auto t) {
    using T = decltype(t);
    if (p.gelu == SmallLinearParams::Gelu::kNone) launch_act<T, kNone>(p, stream);
    else if (p.gelu == SmallLinearParams::Gelu::kErf) launch_act<T, kGeluErf>(p, stream);
    else launch_act<T, kGeluTanh>(p, stream);
  });
}

}  // namespace fathom::cuda
