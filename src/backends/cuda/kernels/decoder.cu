// Decoder-LLM kernels: RMSNorm, SwiGLU, q/k norm + rotary, paged KV writes, paged grouped-query attention.
#include <cstdint>

#include "backends/cuda/decoder_kernels.h"
#include "backends/cuda/kernels/common.cuh"

namespace fathom::cuda {
namespace {
using namespace detail;

constexpr int kMaxHeadDim = 256;

template <typename T>
__global__ void rms_norm_kernel(const T* in, const T* weight, float eps, T* out, int cols) {
  __shared__ float scratch[32];
  const T* row = in + static_cast<std::size_t>(blockIdx.x) * cols;
  T* orow = out + static_cast<std::size_t>(blockIdx.x) * cols;
  float s = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = to_f32(row[c]);
    s += v * v;
  }
  s = block_sum(s, scratch);
  const float inv = rsqrtf(s / cols + eps);
  for (int c = threadIdx.x; c < cols; c += blockDim.x)
    orow[c] = from_f32<T>(to_f32(weight[c]) * (to_f32(row[c]) * inv));
}

template <typename T>
__global__ void silu_mul_kernel(const T* gate_up, T* out, std::size_t n, int cols) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const std::size_t r = i / cols, c = i % cols;
    const float g = to_f32(gate_up[r * 2 * cols + c]);
    const float u = to_f32(gate_up[r * 2 * cols + cols + c]);
    out[i] = from_f32<T>(g / (1.f + __expf(-g)) * u);
  }
}

// One block per (token, q/k head); blockDim.x = head_dim / 2 threads (rounded up to a warp multiple).
template <typename T>
__global__ void qk_norm_rope_kernel(QkNormRopeParams p) {
  __shared__ float scratch[32];
  __shared__ float x[kMaxHeadDim];
  const int t = blockIdx.x, h = blockIdx.y, half = p.head_dim / 2;
  T* head = static_cast<T*>(p.qkv) + static_cast<std::size_t>(t) * p.ld + static_cast<std::size_t>(h) * p.head_dim;
  const int i = threadIdx.x;
  float a = 0.f, b = 0.f;
  if (i < half) {
    a = to_f32(head[i]);
    b = to_f32(head[i + half]);
  }
  const T* w = static_cast<const T*>(h < p.q_heads ? p.q_norm : p.k_norm);
  if (w) {
    const float s = block_sum(a * a + b * b, scratch);
    const float inv = rsqrtf(s / p.head_dim + p.eps);
    if (i < half) {
      a = to_f32(w[i]) * (a * inv);
      b = to_f32(w[i + half]) * (b * inv);
    }
  }
  if (i < half) {
    const float angle = static_cast<float>(p.positions[t]) * p.inv_freq[i];
    const float c = cosf(angle) * p.scaling, s = sinf(angle) * p.scaling;
    x[i] = a * c - b * s;
    x[i + half] = b * c + a * s;
    head[i] = from_f32<T>(x[i]);
    head[i + half] = from_f32<T>(x[i + half]);
  }
}

template <typename T>
__global__ void paged_kv_write_kernel(PagedKvWriteParams p) {
  const int t = blockIdx.x;
  const int32_t slot = p.slots[t];
  if (slot < 0) return;
  const int width = p.kv_heads * p.head_dim;
  const T* row = static_cast<const T*>(p.qkv) + static_cast<std::size_t>(t) * p.ld + static_cast<std::size_t>(p.q_heads) * p.head_dim;
  T* k = static_cast<T*>(p.k_pool) + static_cast<std::size_t>(slot) * width;
  T* v = static_cast<T*>(p.v_pool) + static_cast<std::size_t>(slot) * width;
  for (int c = threadIdx.x; c < width; c += blockDim.x) {
    k[c] = row[c];
    v[c] = row[width + c];
  }
}

constexpr int kArgmaxThreads = 1024;

// Reduces (v, idx) across the warp into lane 0: the larger value wins, the smaller index on ties; idx == none
// marks a lane with no candidate.
__device__ __forceinline__ void warp_argmax(float& v, int& idx, int none) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const float ov = __shfl_down_sync(0xffffffffu, v, off);
    const int oi = __shfl_down_sync(0xffffffffu, idx, off);
    if (oi != none && (idx == none || ov > v || (ov == v && oi < idx))) v = ov, idx = oi;
  }
}

// One block per row: a strided scan per thread, then a block reduction; (value, index) pairs compare by
// value, the lower index winning ties, so the result is the row's first maximum.
__global__ void argmax_rows_kernel(const float* in, int32_t* out, int cols) {
  __shared__ float best_v[kArgmaxThreads / 32];
  __shared__ int best_i[kArgmaxThreads / 32];
  const float* row = in + static_cast<std::size_t>(blockIdx.x) * cols;
  float v = -INFINITY;
  int idx = cols;  // no candidate yet
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const float x = row[c];
    if (x > v || idx == cols) v = x, idx = c;
  }
  warp_argmax(v, idx, cols);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) best_v[warp] = v, best_i[warp] = idx;
  __syncthreads();
  if (warp == 0) {
    const int warps = (blockDim.x + 31) >> 5;
    v = lane < warps ? best_v[lane] : -INFINITY;
    idx = lane < warps ? best_i[lane] : cols;
    warp_argmax(v, idx, cols);
    if (lane == 0) out[blockIdx.x] = idx < cols ? idx : 0;
  }
}

constexpr int kWarpsPerBlock = 4;
constexpr int kDimsPerLane = kMaxHeadDim / 32;

// Grid (num_seqs, max_q_len, ceil(q_heads / 4)); one warp per query head.
template <typename T>
__global__ void attention_paged_kernel(PagedAttentionParams p) {
  const int b = blockIdx.x, i = blockIdx.y;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int h = blockIdx.z * kWarpsPerBlock + warp;
  const PagedAttnSeq sq = p.seqs[b];
  if (i >= sq.q_len || h >= p.q_heads) return;
  const int row = sq.q_start + i;
  const int visible = sq.kv_len - sq.q_len + i + 1;
  T* o = static_cast<T*>(p.out) + static_cast<std::size_t>(row) * p.q_heads * p.head_dim +
         static_cast<std::size_t>(h) * p.head_dim;
  const T* q = static_cast<const T*>(p.qkv) + static_cast<std::size_t>(row) * p.ld + static_cast<std::size_t>(h) * p.head_dim;
  float qv[kDimsPerLane], acc[kDimsPerLane];
#pragma unroll
  for (int j = 0; j < kDimsPerLane; ++j) {
    const int d = lane + 32 * j;
    qv[j] = d < p.head_dim ? to_f32(q[d]) : 0.f;
    acc[j] = 0.f;
  }
  const int width = p.kv_heads * p.head_dim;
  const int col = (h / (p.q_heads / p.kv_heads)) * p.head_dim;
  const int32_t* table = p.block_tables + sq.table_offset;
  float m = -INFINITY, l = 0.f;
  for (int pos = 0; pos < visible; ++pos) {
    const std::size_t slot = static_cast<std::size_t>(table[pos / p.block_size]) * p.block_size + pos % p.block_size;
    const T* k = static_cast<const T*>(p.k_pool) + slot * width + col;
    const T* v = static_cast<const T*>(p.v_pool) + slot * width + col;
    float dot = 0.f;
#pragma unroll
    for (int j = 0; j < kDimsPerLane; ++j) {
      const int d = lane + 32 * j;
      if (d < p.head_dim) dot += qv[j] * to_f32(k[d]);
    }
    const float s = warp_sum(dot) * p.scale;
    const float m_new = fmaxf(m, s);
    const float correction = __expf(m - m_new);
    const float e = __expf(s - m_new);
    l = l * correction + e;
#pragma unroll
    for (int j = 0; j < kDimsPerLane; ++j) {
      const int d = lane + 32 * j;
      if (d < p.head_dim) acc[j] = acc[j] * correction + e * to_f32(v[d]);
    }
    m = m_new;
  }
  const float inv = visible > 0 ? 1.f / l : 0.f;
#pragma unroll
  for (int j = 0; j < kDimsPerLane; ++j) {
    const int d = lane + 32 * j;
    if (d < p.head_dim) o[d] = from_f32<T>(acc[j] * inv);
  }
}

int grid_for(std::size_t n) {
  const std::size_t blocks = (n + 255) / 256;
  return static_cast<int>(blocks < 4096 ? (blocks ? blocks : 1) : 4096);
}

}  // namespace

void rms_norm(DType dtype, const void* in, const void* weight, float eps, void* out, int rows, int cols,
              cudaStream_t stream) {
  require(rows >= 0 && cols > 0, "rms_norm", "rows must be >= 0 and cols > 0");
  if (rows == 0) return;
  const int threads = cols >= 1024 ? 1024 : ((cols + 31) / 32) * 32;
  dispatch_float(dtype, "rms_norm", [&](auto tag) {
    using T = decltype(tag);
    rms_norm_kernel<T><<<rows, threads, 0, stream>>>(static_cast<const T*>(in), static_cast<const T*>(weight), eps,
                                                     static_cast<T*>(out), cols);
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

void silu_mul(DType dtype, const void* gate_up, void* out, int rows, int cols, cudaStream_t stream) {
  require(rows >= 0 && cols > 0, "silu_mul", "rows must be >= 0 and cols > 0");
  const std::size_t n = static_cast<std::size_t>(rows) * cols;
  if (n == 0) return;
  dispatch_float(dtype, "silu_mul", [&](auto tag) {
    using T = decltype(tag);
    silu_mul_kernel<T><<<grid_for(n), 256, 0, stream>>>(static_cast<const T*>(gate_up), static_cast<T*>(out), n, cols);
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

void argmax_rows(const float* in, int32_t* out, int rows, int cols, cudaStream_t stream) {
  require(rows >= 0 && cols > 0, "argmax_rows", "rows must be >= 0 and cols > 0");
  if (rows == 0) return;
  const int threads = cols >= kArgmaxThreads ? kArgmaxThreads : ((cols + 31) / 32) * 32;
  argmax_rows_kernel<<<rows, threads, 0, stream>>>(in, out, cols);
  FATHOM_CUDA_CHECK_LAUNCH();
}

void qk_norm_rope(const QkNormRopeParams& p, cudaStream_t stream) {
  require(p.head_dim > 0 && p.head_dim % 2 == 0 && p.head_dim <= kMaxHeadDim, "qk_norm_rope",
          "head_dim must be even and <= 256");
  require(p.q_heads > 0 && p.kv_heads > 0 && p.tokens >= 0, "qk_norm_rope", "bad head or token counts");
  if (p.tokens == 0) return;
  const int threads = ((p.head_dim / 2 + 31) / 32) * 32;
  dim3 grid(static_cast<unsigned>(p.tokens), static_cast<unsigned>(p.q_heads + p.kv_heads));
  dispatch_float(p.dtype, "qk_norm_rope", [&](auto tag) {
    using T = decltype(tag);
    qk_norm_rope_kernel<T><<<grid, threads, 0, stream>>>(p);
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

void paged_kv_write(const PagedKvWriteParams& p, cudaStream_t stream) {
  require(p.kv_heads > 0 && p.head_dim > 0 && p.tokens >= 0, "paged_kv_write", "bad head or token counts");
  if (p.tokens == 0) return;
  const int width = p.kv_heads * p.head_dim;
  const int threads = width >= 256 ? 256 : ((width + 31) / 32) * 32;
  dispatch_float(p.dtype, "paged_kv_write", [&](auto tag) {
    using T = decltype(tag);
    paged_kv_write_kernel<T><<<p.tokens, threads, 0, stream>>>(p);
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

void attention_paged(const PagedAttentionParams& p, cudaStream_t stream) {
  require(p.head_dim > 0 && p.head_dim <= kMaxHeadDim, "attention_paged", "head_dim must be in [1, 256]");
  require(p.q_heads > 0 && p.kv_heads > 0 && p.q_heads % p.kv_heads == 0, "attention_paged",
          "q_heads must be a positive multiple of kv_heads");
  require(p.block_size > 0 && p.max_q_len >= 0 && p.max_q_len <= 65535, "attention_paged",
          "block_size must be positive and max_q_len <= 65535");
  if (p.num_seqs == 0 || p.max_q_len == 0) return;
  dim3 grid(static_cast<unsigned>(p.num_seqs), static_cast<unsigned>(p.max_q_len),
            static_cast<unsigned>((p.q_heads + kWarpsPerBlock - 1) / kWarpsPerBlock));
  dispatch_float(p.dtype, "attention_paged", [&](auto tag) {
    using T = decltype(tag);
    attention_paged_kernel<T><<<grid, 32 * kWarpsPerBlock, 0, stream>>>(p);
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

}  // namespace fathom::cuda
