// Varlen multi-head self-attention: flash-attention-style tiling with online softmax, f32 accumulation.
// f16 / bf16 with head_dim 32, 64 or 128 go to the tensor-core kernel (attention_mma.cu), causal, grouped-query and
// sliding-window passes included; this file's CUDA-core kernel serves f32 (computed entirely in f32), every other
// head_dim and the relative-distance bias.
//
// One block per (query tile of kAttnTileRows rows of one sequence, head). The head dim D (1..128) is padded to a
// compiled width DP in {8, 16, 32, 64, 128}. When D and the leading dimensions are multiples of 4 every 4-wide
// chunk is one vector load/store; otherwise (e.g. D = 10) the kVec = false instantiation moves the same chunks
// element by element, masking the dims past D. Each query row is owned by TPR = DP/min(DP,32) adjacent
// threads; each thread holds min(DP,32) of the row's dims of q and of the output accumulator in registers (dims interleaved in 4-wide chunks so the TPR threads read distinct shared
// memory banks). K and V tiles of kKeys rows are staged in shared memory as f32; scores are processed
// in groups of 8 keys with one running-max rescale per group.
#include <cmath>

#include "backends/cuda/kernels.h"
#include "backends/cuda/kernels/attention_mma.h"
#include "backends/cuda/kernels/common.cuh"

namespace fathom::cuda {
namespace {
using namespace detail;

constexpr int kKeys = 32;
constexpr int kGroup = 8;

__device__ __forceinline__ float4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ float4 load4(const __half* p) {
  const uint2 u = *reinterpret_cast<const uint2*>(p);
  const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&u.x));
  const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&u.y));
  return make_float4(a.x, a.y, b.x, b.y);
}
__device__ __forceinline__ float4 load4(const __nv_bfloat16* p) {
  const uint2 u = *reinterpret_cast<const uint2*>(p);
  const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u.x));
  const float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u.y));
  return make_float4(a.x, a.y, b.x, b.y);
}
__device__ __forceinline__ void store4(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }
__device__ __forceinline__ void store4(__half* p, float4 v) {
  __half2 a = __floats2half2_rn(v.x, v.y), b = __floats2half2_rn(v.z, v.w);
  uint2 u;
  u.x = *reinterpret_cast<uint32_t*>(&a);
  u.y = *reinterpret_cast<uint32_t*>(&b);
  *reinterpret_cast<uint2*>(p) = u;
}
__device__ __forceinline__ void store4(__nv_bfloat16* p, float4 v) {
  __nv_bfloat162 a = __floats2bfloat162_rn(v.x, v.y), b = __floats2bfloat162_rn(v.z, v.w);
  uint2 u;
  u.x = *reinterpret_cast<uint32_t*>(&a);
  u.y = *reinterpret_cast<uint32_t*>(&b);
  *reinterpret_cast<uint2*>(p) = u;
}

// A 4-wide chunk starting at p of which the first n (1..4) elements lie inside the head: vector access
// when kVec (then n is always 4 and p is 16-byte aligned for f32, 8-byte for 16-bit types), else scalar.
template <bool kVec, typename T> __device__ __forceinline__ float4 load_chunk(const T* p, int n) {
  if constexpr (kVec) {
    return load4(p);
  } else {
    float e[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) e[i] = i < n ? to_f32(p[i]) : 0.f;
    return make_float4(e[0], e[1], e[2], e[3]);
  }
}
template <bool kVec, typename T> __device__ __forceinline__ void store_chunk(T* p, float4 v, int n) {
  if constexpr (kVec) {
    store4(p, v);
  } else {
    const float e[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i)
      if (i < n) p[i] = from_f32<T>(e[i]);
  }
}

template <int DP> constexpr int threads_per_row() { return DP > 32 ? DP / 32 : 1; }

template <typename T, int DP, bool kVec>
__global__ void __launch_bounds__(kAttnTileRows * threads_per_row<DP>())
    attention_kernel(AttentionParams p, float scale_log2) {
  constexpr int TPR = threads_per_row<DP>();
  constexpr int kThreads = kAttnTileRows * TPR;
  constexpr int kChunks = DP / TPR / 4;  // 4-wide chunks per thread
  __shared__ __align__(16) float ks[kKeys][DP];
  __shared__ __align__(16) float vs[kKeys][DP];
  const int D = p.head_dim;  // <= DP; a multiple of 4 when kVec

  griddep_wait();  // launched with launch_pdl: everything below may depend on the previous kernel
  const int tile = blockIdx.x, head = blockIdx.y;
  if (tile >= p.batch.header[1]) return;
  const int seq = p.batch.tile_seq[tile];
  const int q0 = p.batch.tile_q0[tile];
  const int tid = threadIdx.x, row = tid / TPR, part = tid % TPR;
  const int qrow = q0 + row;
  T* out = static_cast<T*>(p.out);

  if (seq < 0) {  // masked tail: zeros
    const int end = p.batch.header[3];
    if (qrow < end) {
#pragma unroll
      for (int c = 0; c < kChunks; ++c) {
        const int d0 = (c * TPR + part) * 4;
        if (d0 < D)
          store_chunk<kVec>(out + static_cast<std::size_t>(qrow) * p.ld_out + head * D + d0,
                            make_float4(0.f, 0.f, 0.f, 0.f), D - d0);
      }
    }
    return;
  }
  const int kbeg = p.batch.cu_seqlens[seq], kend = p.batch.cu_seqlens[seq + 1];
  const bool valid = qrow < kend;
  const bool extras = p.window_half >= 0 || p.distance_bias || p.causal;
  // A sliding window or the causal mask limits the keys the tile's rows can see.
  const int klo = p.window_half >= 0 ? max(kbeg, q0 - p.window_half) : kbeg;
  int khi = p.window_half >= 0 ? min(kend, q0 + kAttnTileRows + p.window_half) : kend;
  if (p.causal) khi = min(khi, q0 + kAttnTileRows);
  const float* bias_row =
      p.distance_bias ? p.distance_bias + static_cast<std::size_t>(head) * (2 * p.bias_span - 1) + p.bias_span - 1 : nullptr;

  const T* qp = static_cast<const T*>(p.q) + head * D;
  const int kv_head = p.kv_heads > 0 ? head / (p.num_heads / p.kv_heads) : head;
  const T* kp = static_cast<const T*>(p.k) + kv_head * D;
  const T* vp = static_cast<const T*>(p.v) + kv_head * D;

  float q[kChunks * 4], acc[kChunks * 4];
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const int d0 = (c * TPR + part) * 4;
    const float4 v = valid && d0 < D ? load_chunk<kVec>(qp + static_cast<std::size_t>(qrow) * p.ld_qkv + d0, D - d0)
                                     : make_float4(0.f, 0.f, 0.f, 0.f);
    q[c * 4 + 0] = v.x * scale_log2;
    q[c * 4 + 1] = v.y * scale_log2;
    q[c * 4 + 2] = v.z * scale_log2;
    q[c * 4 + 3] = v.w * scale_log2;
  }
#pragma unroll
  for (int i = 0; i < kChunks * 4; ++i) acc[i] = 0.f;
  float m = -INFINITY, l = 0.f;

  for (int k0 = klo; k0 < khi; k0 += kKeys) {
    const int nk = min(kKeys, khi - k0);
    __syncthreads();  // previous tile fully consumed
    constexpr int kVecPerRow = DP / 4;
    for (int idx = tid; idx < kKeys * kVecPerRow; idx += kThreads) {
      const int j = idx / kVecPerRow, c4 = idx % kVecPerRow;
      float4 kv = make_float4(0.f, 0.f, 0.f, 0.f), vv = kv;
      if (j < nk && c4 * 4 < D) {
        const std::size_t off = static_cast<std::size_t>(k0 + j) * p.ld_qkv + c4 * 4;
        kv = load_chunk<kVec>(kp + off, D - c4 * 4);
        vv = load_chunk<kVec>(vp + off, D - c4 * 4);
      }
      *reinterpret_cast<float4*>(&ks[j][c4 * 4]) = kv;
      *reinterpret_cast<float4*>(&vs[j][c4 * 4]) = vv;
    }
    __syncthreads();

    for (int j0 = 0; j0 < nk; j0 += kGroup) {
      float s[kGroup];
#pragma unroll
      for (int u = 0; u < kGroup; ++u) {
        const int j = j0 + u;
        float d = 0.f;
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
          const float4 kv = *reinterpret_cast<const float4*>(&ks[j][(c * TPR + part) * 4]);
          d = fmaf(q[c * 4 + 0], kv.x, d);
          d = fmaf(q[c * 4 + 1], kv.y, d);
          d = fmaf(q[c * 4 + 2], kv.z, d);
          d = fmaf(q[c * 4 + 3], kv.w, d);
        }
#pragma unroll
        for (int o = 1; o < TPR; o <<= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
        s[u] = j < nk ? d : -INFINITY;
        if (extras && j < nk && valid) {
          const int dist = k0 + j - qrow;
          if ((p.window_half >= 0 && abs(dist) > p.window_half) || (p.causal && dist > 0)) s[u] = -INFINITY;
          else if (bias_row) s[u] += bias_row[dist] * 1.4426950408889634f;  // scores are in log2 units
        }
      }
      float mx = s[0];
#pragma unroll
      for (int u = 1; u < kGroup; ++u) mx = fmaxf(mx, s[u]);
      const float m_new = fmaxf(m, mx);
      // Fully masked so far (sliding window, causal): nothing to rescale, no weight.
      const float corr = m_new == -INFINITY ? 1.f : exp2f(m - m_new);
      l *= corr;
#pragma unroll
      for (int i = 0; i < kChunks * 4; ++i) acc[i] *= corr;
#pragma unroll
      for (int u = 0; u < kGroup; ++u) {
        const float pu = s[u] == -INFINITY ? 0.f : exp2f(s[u] - m_new);
        l += pu;
        const int j = j0 + u;
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
          const float4 vv = *reinterpret_cast<const float4*>(&vs[j][(c * TPR + part) * 4]);
          acc[c * 4 + 0] = fmaf(pu, vv.x, acc[c * 4 + 0]);
          acc[c * 4 + 1] = fmaf(pu, vv.y, acc[c * 4 + 1]);
          acc[c * 4 + 2] = fmaf(pu, vv.z, acc[c * 4 + 2]);
          acc[c * 4 + 3] = fmaf(pu, vv.w, acc[c * 4 + 3]);
        }
      }
      m = m_new;
    }
  }
  if (!valid) return;
  const float inv = 1.f / l;
  T* op = out + static_cast<std::size_t>(qrow) * p.ld_out + head * D;
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const int d0 = (c * TPR + part) * 4;
    if (d0 < D)
      store_chunk<kVec>(op + d0, make_float4(acc[c * 4] * inv, acc[c * 4 + 1] * inv, acc[c * 4 + 2] * inv, acc[c * 4 + 3] * inv),
                        D - d0);
  }
}

template <typename T, int DP>
void launch(const AttentionParams& p, float scale_log2, cudaStream_t stream) {
  dim3 grid(p.batch.max_tiles, p.num_heads);
  const dim3 block(kAttnTileRows * threads_per_row<DP>());
  const bool vec = p.head_dim % 4 == 0 && p.ld_qkv % 4 == 0 && p.ld_out % 4 == 0;
  if (vec) launch_pdl(attention_kernel<T, DP, true>, grid, block, 0, stream, p, scale_log2);
  else launch_pdl(attention_kernel<T, DP, false>, grid, block, 0, stream, p, scale_log2);
}

}  // namespace

void attention_varlen(const AttentionParams& p, cudaStream_t stream) {
  require(p.head_dim >= 1 && p.head_dim <= 128, "attention",
          "head_dim must be in 1..128, got " + std::to_string(p.head_dim));
  require(p.num_heads > 0 && p.q && p.k && p.v && p.out && p.batch.header && p.batch.max_tiles > 0, "attention",
          "null pointer or empty batch");
  require(p.ld_qkv >= p.num_heads * p.head_dim && p.ld_out >= p.num_heads * p.head_dim, "attention",
          "leading dimensions must cover all heads");
  const float scale = p.scale > 0.f ? p.scale : 1.f / std::sqrt(static_cast<float>(p.head_dim));
  const float scale_log2 = scale * 1.4426950408889634f;
  require(!p.distance_bias || p.bias_span >= 1, "attention", "distance_bias needs bias_span >= 1");
  require(p.kv_heads >= 0 && (p.kv_heads == 0 || p.num_heads % p.kv_heads == 0), "attention",
          "num_heads " + std::to_string(p.num_heads) + " is not a multiple of kv_heads " + std::to_string(p.kv_heads));
  if (!p.distance_bias && attention_mma_supported(p)) {  // f16 / bf16, head_dim 32 / 64 / 128: tensor cores
    attention_varlen_mma(p, scale_log2, stream);
    FATHOM_CUDA_CHECK_LAUNCH();
    return;
  }
  dispatch_float(p.dtype, "attention", [&](auto t) {
    using T = decltype(t);
    if (p.head_dim <= 8) launch<T, 8>(p, scale_log2, stream);
    else if (p.head_dim <= 16) launch<T, 16>(p, scale_log2, stream);
    else if (p.head_dim <= 32) launch<T, 32>(p, scale_log2, stream);
    else if (p.head_dim <= 64) launch<T, 64>(p, scale_log2, stream);
    else launch<T, 128>(p, scale_log2, stream);
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

}  // namespace fathom::cuda
