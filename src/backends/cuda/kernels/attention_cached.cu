// Attention of packed queries over per-sequence cached keys/values (decoder self- and cross-attention).
//
// Decode is bandwidth bound, so the kernel is built around reading K and V exactly once per block: one
// block of kThreads threads per (sequence, query block of QB queries, head, key split), heads adjacent in
// the grid so that blocks running together read whole K/V rows. A key's head slice (head_dim elements,
// padded to the compiled width D) is covered by LK = D / E adjacent threads, each owning E elements (16
// bytes of T): a block streams G = kThreads / LK keys at a time and kUnroll of those steps are loaded
// before any is used. Scores come from an xor-shuffle reduction inside the LK lanes; every thread keeps an
// online softmax (running max, sum, and its E output dims per query) in registers, in the log2 domain with
// f32 arithmetic. The G per-group states are merged through shared memory at the end. With splits > 1
// every split writes its normalised partial output and log-sum-exp, and a second kernel merges the splits.
#include <algorithm>
#include <cmath>

#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/sequence_kernels.h"

namespace fathom::cuda {
namespace {
using namespace detail;

constexpr int kThreads = 128;
constexpr int kUnroll = 4;
constexpr int kMaxDim = 128;

// 16 bytes of T as floats.
template <typename T> struct Chunk;
template <> struct Chunk<float> {
  static constexpr int E = 4;
  __device__ static void to_float(const uint4& u, float* f) {
    f[0] = __uint_as_float(u.x); f[1] = __uint_as_float(u.y); f[2] = __uint_as_float(u.z); f[3] = __uint_as_float(u.w);
  }
};
template <> struct Chunk<__half> {
  static constexpr int E = 8;
  __device__ static void to_float(const uint4& u, float* f) {
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 v = __half22float2(*reinterpret_cast<const __half2*>(&w[i]));
      f[2 * i] = v.x; f[2 * i + 1] = v.y;
    }
  }
};
template <> struct Chunk<__nv_bfloat16> {
  static constexpr int E = 8;
  __device__ static void to_float(const uint4& u, float* f) {
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 v = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w[i]));
      f[2 * i] = v.x; f[2 * i + 1] = v.y;
    }
  }
};

// Loads the E elements at p (column c0 of the head slice; `dim` valid columns). kVec: one 16-byte load
// (p 16-byte aligned, the chunk entirely valid or entirely past `dim`); otherwise element by element.
template <typename T, bool kVec>
__device__ __forceinline__ uint4 load_chunk(const T* p, int c0, int dim, bool valid) {
  constexpr int E = Chunk<T>::E;
  uint4 u = make_uint4(0u, 0u, 0u, 0u);
  if constexpr (kVec) {
    if (valid && c0 < dim) u = __ldg(reinterpret_cast<const uint4*>(p));
  } else {
    T tmp[E];
#pragma unroll
    for (int e = 0; e < E; ++e) tmp[e] = (valid && c0 + e < dim) ? p[e] : from_f32<T>(0.f);
    memcpy(&u, tmp, sizeof(u));
  }
  return u;
}

template <typename T, int D, int QB, bool kVec>
__global__ void __launch_bounds__(kThreads) cached_attention_kernel(CachedAttentionParams p, float scale_log2) {
  constexpr int E = Chunk<T>::E;
  constexpr int LK = D / E;          // lanes per key
  constexpr int G = kThreads / LK;   // keys per step
  static_assert(LK <= 32 && (32 % LK) == 0, "a key's lanes must sit inside one warp");
  __shared__ float sm_m[G][QB], sm_l[G][QB], sm_w[G][QB], sm_inv[QB];
  __shared__ __align__(16) float sm_acc[G][QB][D];

  const int qblocks = (p.max_q_len + QB - 1) / QB;
  // Heads vary fastest across blocks, so blocks running together read whole K/V rows of one sequence.
  const int h = static_cast<int>(blockIdx.x % p.heads), work = static_cast<int>(blockIdx.x / p.heads);
  const int seq = work / qblocks, qb = work % qblocks;
  const int split = blockIdx.y;
  const CachedAttnSeq s = p.seqs[seq];
  const int q_len = s.q_len;
  const int q0 = qb * QB;
  if (q0 >= q_len) return;
  const int nq = min(QB, q_len - q0);
  const int kv_len = min(s.kv_len, p.max_kv_len);
  const int dim = p.head_dim;
  // Keys the block's queries may see: query i (of the sequence) sees [0, kv_len - q_len + i].
  const int diag = kv_len - q_len;  // causal: query i sees keys j <= diag + i
  const int k_end = p.causal ? max(0, min(kv_len, diag + q0 + nq)) : kv_len;
  int chunk = (kv_len + p.splits - 1) / p.splits;
  chunk = (chunk + G * kUnroll - 1) / (G * kUnroll) * (G * kUnroll);
  const int kb = split * chunk;
  const int ke = min(k_end, kb + chunk);

  const int tid = threadIdx.x, g = tid / LK, lane = tid % LK;
  const int c0 = lane * E;

  float q[QB][E];
  const T* qp = static_cast<const T*>(p.q);
#pragma unroll
  for (int qi = 0; qi < QB; ++qi)
#pragma unroll
    for (int e = 0; e < E; ++e) {
      const bool ok = qi < nq && c0 + e < dim;
      q[qi][e] = ok ? to_f32(qp[static_cast<std::size_t>(s.q_start + q0 + qi) * p.ld_q + h * dim + c0 + e]) * scale_log2
                    : 0.f;
    }

  float m[QB], l[QB], acc[QB][E];
#pragma unroll
  for (int qi = 0; qi < QB; ++qi) {
    m[qi] = -INFINITY;
    l[qi] = 0.f;
#pragma unroll
    for (int e = 0; e < E; ++e) acc[qi][e] = 0.f;
  }

  const T* kbase = static_cast<const T*>(s.k) + h * dim + c0;
  const T* vbase = static_cast<const T*>(s.v) + h * dim + c0;
  // Uniform trip count over the block (shuffles below need every lane of a warp).
  for (int jb = kb; jb < ke; jb += G * kUnroll) {
    uint4 kr[kUnroll], vr[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int j = jb + u * G + g;
      const bool ok = j < ke;
      kr[u] = load_chunk<T, kVec>(kbase + static_cast<int64_t>(j) * p.ld_kv, c0, dim, ok);
      vr[u] = load_chunk<T, kVec>(vbase + static_cast<int64_t>(j) * p.ld_kv, c0, dim, ok);
    }
    float sc[kUnroll][QB];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      float kf[E];
      Chunk<T>::to_float(kr[u], kf);
#pragma unroll
      for (int qi = 0; qi < QB; ++qi) {
        float d = 0.f;
#pragma unroll
        for (int e = 0; e < E; ++e) d = fmaf(q[qi][e], kf[e], d);
#pragma unroll
        for (int o = LK / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
        const int j = jb + u * G + g;
        const bool visible = j < ke && (!p.causal || j <= diag + q0 + qi);
        sc[u][qi] = visible ? d : -INFINITY;
      }
    }
#pragma unroll
    for (int qi = 0; qi < QB; ++qi) {
      float mx = m[qi];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) mx = fmaxf(mx, sc[u][qi]);
      if (mx == -INFINITY) continue;
      const float corr = exp2f(m[qi] - mx);  // 0 while m is -inf
      m[qi] = mx;
      l[qi] *= corr;
#pragma unroll
      for (int e = 0; e < E; ++e) acc[qi][e] *= corr;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const float pr = exp2f(sc[u][qi] - mx);
        l[qi] += pr;
        float vf[E];
        Chunk<T>::to_float(vr[u], vf);
#pragma unroll
        for (int e = 0; e < E; ++e) acc[qi][e] = fmaf(pr, vf[e], acc[qi][e]);
      }
    }
  }

  // Merge the G groups.
#pragma unroll
  for (int qi = 0; qi < QB; ++qi) {
    if (lane == 0) { sm_m[g][qi] = m[qi]; sm_l[g][qi] = l[qi]; }
#pragma unroll
    for (int e = 0; e < E; ++e) sm_acc[g][qi][c0 + e] = acc[qi][e];
  }
  __syncthreads();
  if (tid < QB) {
    float mx = -INFINITY;
    for (int i = 0; i < G; ++i) mx = fmaxf(mx, sm_m[i][tid]);
    float sum = 0.f;
    for (int i = 0; i < G; ++i) {
      const float w = mx == -INFINITY ? 0.f : exp2f(sm_m[i][tid] - mx);
      sm_w[i][tid] = w;
      sum += w * sm_l[i][tid];
    }
    sm_inv[tid] = sum > 0.f ? 1.f / sum : 0.f;
    sm_m[0][tid] = sum > 0.f ? mx + log2f(sum) : -INFINITY;  // log2-sum-exp of the split
  }
  __syncthreads();
  for (int i = tid; i < nq * dim; i += kThreads) {
    const int qi = i / dim, c = i % dim;
    float o = 0.f;
#pragma unroll 4
    for (int k = 0; k < G; ++k) o = fmaf(sm_w[k][qi], sm_acc[k][qi][c], o);
    o *= sm_inv[qi];
    const std::size_t row = static_cast<std::size_t>(s.q_start + q0 + qi);
    if (p.splits == 1) {
      static_cast<T*>(p.out)[row * p.ld_out + h * dim + c] = from_f32<T>(o);
    } else {
      const std::size_t slot = (static_cast<std::size_t>(split) * p.rows + row) * p.heads + h;
      p.partial[slot * dim + c] = o;
      if (c == 0) p.partial[static_cast<std::size_t>(p.splits) * p.rows * p.heads * dim + slot] = sm_m[0][qi];
    }
  }
}

// out = sum_s exp2(lse_s - M) o_s / sum_s exp2(lse_s - M) for each (query, head); one block per pair.
template <typename T>
__global__ void __launch_bounds__(kMaxDim) merge_splits_kernel(CachedAttentionParams p) {
  const int seq = blockIdx.x / p.max_q_len, qi = blockIdx.x % p.max_q_len, h = blockIdx.y;
  const CachedAttnSeq s = p.seqs[seq];
  if (qi >= s.q_len) return;
  const std::size_t row = static_cast<std::size_t>(s.q_start + qi);
  const float* lse = p.partial + static_cast<std::size_t>(p.splits) * p.rows * p.heads * p.head_dim;
  float mx = -INFINITY;
  for (int k = 0; k < p.splits; ++k) mx = fmaxf(mx, lse[(static_cast<std::size_t>(k) * p.rows + row) * p.heads + h]);
  for (int c = threadIdx.x; c < p.head_dim; c += blockDim.x) {
    float o = 0.f, sum = 0.f;
    if (mx != -INFINITY)
      for (int k = 0; k < p.splits; ++k) {
        const std::size_t slot = (static_cast<std::size_t>(k) * p.rows + row) * p.heads + h;
        const float w = exp2f(lse[slot] - mx);
        sum += w;
        o = fmaf(w, p.partial[slot * p.head_dim + c], o);
      }
    static_cast<T*>(p.out)[row * p.ld_out + h * p.head_dim + c] = from_f32<T>(sum > 0.f ? o / sum : 0.f);
  }
}

template <typename T, int D, int QB>
void launch(const CachedAttentionParams& p, bool vec, cudaStream_t stream) {
  const int qblocks = (p.max_q_len + QB - 1) / QB;
  const dim3 grid(static_cast<unsigned>(p.num_seqs * qblocks * p.heads), static_cast<unsigned>(p.splits));
  const float scale_log2 = p.scale * 1.4426950408889634f;
  if (vec) cached_attention_kernel<T, D, QB, true><<<grid, kThreads, 0, stream>>>(p, scale_log2);
  else cached_attention_kernel<T, D, QB, false><<<grid, kThreads, 0, stream>>>(p, scale_log2);
  FATHOM_CUDA_CHECK_LAUNCH();
}

}  // namespace

int cached_attention_splits(int num_seqs, int max_q_len, int heads, int max_kv_len, int sms) {
  const int qb = max_q_len <= 1 ? 1 : 4;
  const long work = static_cast<long>(num_seqs) * ((max_q_len + qb - 1) / qb) * heads;
  const long target = 2L * (sms > 0 ? sms : 1);
  if (work <= 0 || work >= target || max_kv_len < 256) return 1;
  const long by_work = (2 * target + work - 1) / work;  // aim at ~4 blocks per SM
  const long by_keys = max_kv_len / 128;                 // keep >= 128 keys per split
  return static_cast<int>(std::max(1L, std::min(std::min(by_work, by_keys), 64L)));
}

std::size_t cached_attention_partial_floats(int rows, int heads, int head_dim, int splits) {
  if (splits <= 1) return 0;
  return static_cast<std::size_t>(splits) * rows * heads * (static_cast<std::size_t>(head_dim) + 1);
}

void cached_attention(const CachedAttentionParams& p, cudaStream_t stream) {
  constexpr const char* kOp = "attention_cached";
  require(p.heads > 0 && p.head_dim > 0, kOp, "heads and head_dim must be positive");
  if (p.head_dim > kMaxDim)
    throw Exception(ErrorCode::kUnsupported, std::string(kOp) + ": head_dim " + std::to_string(p.head_dim) +
                                                 " exceeds the CUDA kernel's " + std::to_string(kMaxDim));
  require(p.splits >= 1 && p.splits <= 1024, kOp, "splits must be in [1, 1024]");
  require(p.splits == 1 || p.partial, kOp, "splits > 1 needs the partial scratch");
  require(p.num_seqs >= 0 && p.max_q_len >= 0 && p.max_kv_len >= 0 && p.rows >= 0, kOp, "negative bound");
  if (p.num_seqs == 0 || p.max_q_len == 0 || p.rows == 0) return;
  require(p.q && p.out && p.seqs, kOp, "null pointer");
  require(static_cast<long>(p.num_seqs) * p.max_q_len * p.heads < (1L << 31) && p.heads <= 65535, kOp,
          "grid too large");
  dispatch_float(p.dtype, kOp, [&](auto tag) {
    using T = decltype(tag);
    constexpr int E = Chunk<T>::E;
    const bool vec = p.kv_aligned && p.head_dim % E == 0 && p.ld_kv % E == 0;
    const bool wide = p.head_dim > 64;
    if (p.max_q_len == 1) {
      if (wide) launch<T, 128, 1>(p, vec, stream); else launch<T, 64, 1>(p, vec, stream);
    } else {
      if (wide) launch<T, 128, 4>(p, vec, stream); else launch<T, 64, 4>(p, vec, stream);
    }
    if (p.splits > 1) {
      const dim3 grid(static_cast<unsigned>(p.num_seqs * p.max_q_len), static_cast<unsigned>(p.heads));
      const int threads = std::min(kMaxDim, (p.head_dim + 31) / 32 * 32);
      merge_splits_kernel<T><<<grid, threads, 0, stream>>>(p);
      FATHOM_CUDA_CHECK_LAUNCH();
    }
  });
}

}  // namespace fathom::cuda
