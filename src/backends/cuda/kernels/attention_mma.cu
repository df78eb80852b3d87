// Tensor-core varlen attention for f16 / bf16 (flash-attention-2 style, mma.sync m16n8k16).
//
// One block of 4 warps per (query tile of kAttnTileRows = 64 rows of one sequence, head); warp w owns
// query rows [16w, 16w + 16) of the tile. Q fragments stay in registers for the whole pass. K and V tiles
// of kKeys = 64 rows are copied into shared memory with cp.async (rows past the sequence end are zero
// filled), K of the next tile streaming in while P·V of the current one runs. S = Q·K^T and O += P·V run on
// the tensor cores with f32 accumulation; the online softmax (running max and sum per row) is kept in f32,
// P is rounded to the input type for the P·V product. Rows past the sequence end are computed but never
// stored; warps whose rows all lie past it skip the arithmetic. Masked tail tiles (tile_seq = -1) write zeros.
// Grouped-query heads read key / value head h / (num_heads / kv_heads); a causal pass stops after the key tile
// on the diagonal and masks the keys after each row there; a sliding window (ModernBERT's local layers) visits
// only the key tiles within window_half of the tile's rows and masks the keys outside each row's window.
#include <cstdint>

#include "backends/cuda/kernels.h"
#include "backends/cuda/kernels/attention_mma.h"
#include "backends/cuda/kernels/common.cuh"

namespace fathom::cuda {
namespace {
using detail::griddep_wait;
using detail::launch_pdl;

constexpr int kRows = kAttnTileRows;  // 64 query rows per block
constexpr int kWarps = kRows / 16;
constexpr int kThreads = kWarps * 32;
constexpr int kKeys = 64;
static_assert(kRows == 64, "the tensor-core attention kernel assumes 64-row query tiles");

template <typename T> struct MmaType;
template <> struct MmaType<__half> {
  static __device__ __forceinline__ uint32_t pack(float a, float b) {
    __half2 h = __floats2half2_rn(a, b);
    return *reinterpret_cast<uint32_t*>(&h);
  }
  static __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};
template <> struct MmaType<__nv_bfloat16> {
  static __device__ __forceinline__ uint32_t pack(float a, float b) {
    __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    return *reinterpret_cast<uint32_t*>(&h);
  }
  static __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
// 16-byte global -> shared copy; src_bytes = 0 zero-fills the destination without reading.
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Copies rows [k0, k0 + kKeys) of a K or V head slice (row stride ld elements) into `tile` (row stride
// D + 8); rows >= kend are zero-filled.
template <typename T, int D>
__device__ __forceinline__ void load_tile(T (*tile)[D + 8], const T* base, int ld, int k0, int kend) {
  constexpr int kChunks = D / 8;  // 16-byte chunks per row
#pragma unroll
  for (int i = threadIdx.x; i < kKeys * kChunks; i += kThreads) {
    const int r = i / kChunks, c = i % kChunks;
    const int key = k0 + r;
    const bool ok = key < kend;
    const T* src = base + (ok ? static_cast<std::size_t>(key) * ld + c * 8 : 0);
    cp_async16(smem_addr(&tile[r][c * 8]), src, ok ? 16 : 0);
  }
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads) attention_mma_kernel(AttentionParams p, float scale_log2) {
  using M = MmaType<T>;
  constexpr int kKSteps = D / 16;    // k-steps of Q·K^T over the head dim
  constexpr int kDBlocks = D / 8;    // n-blocks of the output
  constexpr int kNBlocks = kKeys / 8;  // n-blocks of S per key tile
  __shared__ __align__(16) T ks[kKeys][D + 8];
  __shared__ __align__(16) T vs[kKeys][D + 8];

  griddep_wait();  // launched with launch_pdl: everything below may depend on the previous kernel
  const int tile = blockIdx.x, head = blockIdx.y;
  if (tile >= p.batch.header[1]) return;
  const int seq = p.batch.tile_seq[tile];
  const int q0 = p.batch.tile_q0[tile];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t4 = lane & 3;
  T* out = static_cast<T*>(p.out) + head * D;

  if (seq < 0) {  // masked tail: zeros for rows [q0, min(q0 + 64, padded_tokens))
    const int end = min(q0 + kRows, p.batch.header[3]);
    for (int i = threadIdx.x; i < kRows * (D / 8); i += kThreads) {
      const int r = q0 + i / (D / 8);
      if (r < end) *reinterpret_cast<uint4*>(out + static_cast<std::size_t>(r) * p.ld_out + (i % (D / 8)) * 8) = uint4{0, 0, 0, 0};
    }
    return;
  }
  const int kbeg = p.batch.cu_seqlens[seq], kend = p.batch.cu_seqlens[seq + 1];
  const int kv_head = p.kv_heads > 0 ? head / (p.num_heads / p.kv_heads) : head;
  const T* kp = static_cast<const T*>(p.k) + kv_head * D;
  const T* vp = static_cast<const T*>(p.v) + kv_head * D;
  // The keys the tile's rows can see: a sliding window of +-window_half around each row, keys up to the row
  // when causal (keys of a loaded tile outside a row's range are masked below).
  const bool window = p.window_half >= 0;
  const int kstart = window ? max(kbeg, q0 - p.window_half) : kbeg;
  int kstop = window ? min(kend, q0 + kRows + p.window_half) : kend;
  if (p.causal) kstop = min(kstop, q0 + kRows);

  // Start the first K and V tiles while Q is read.
  load_tile<T, D>(ks, kp, p.ld_qkv, kstart, kend);
  cp_async_commit();
  load_tile<T, D>(vs, vp, p.ld_qkv, kstart, kend);
  cp_async_commit();

  const int row0 = q0 + warp * 16 + g, row1 = row0 + 8;  // this thread's two query rows
  const bool warp_active = q0 + warp * 16 < kend;
  uint32_t qf[kKSteps][4];
  {
    const T* qp = static_cast<const T*>(p.q) + head * D;
    const bool v0 = row0 < kend, v1 = row1 < kend;
    const uint32_t* q0p = reinterpret_cast<const uint32_t*>(qp + static_cast<std::size_t>(v0 ? row0 : kbeg) * p.ld_qkv);
    const uint32_t* q1p = reinterpret_cast<const uint32_t*>(qp + static_cast<std::size_t>(v1 ? row1 : kbeg) * p.ld_qkv);
#pragma unroll
    for (int s = 0; s < kKSteps; ++s) {
      qf[s][0] = v0 ? q0p[s * 8 + t4] : 0u;
      qf[s][1] = v1 ? q1p[s * 8 + t4] : 0u;
      qf[s][2] = v0 ? q0p[s * 8 + 4 + t4] : 0u;
      qf[s][3] = v1 ? q1p[s * 8 + 4 + t4] : 0u;
    }
  }

  float o[kDBlocks][4];
#pragma unroll
  for (int d = 0; d < kDBlocks; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;  // per-thread partial sums (quad-reduced at the end)

  // ldmatrix lane addressing.
  const int k_row = lane & 7, k_col = (lane >> 3) * 8;                   // K: 4 matrices along the head dim
  const int v_row = (lane & 7) + ((lane >> 3) & 1) * 8, v_col = (lane >> 4) * 8;  // V^T: 2 key halves x 2 dim blocks

  for (int k0 = kstart; k0 < kstop; k0 += kKeys) {
    const bool more = k0 + kKeys < kstop;
    cp_async_wait<1>();  // K of this tile
    __syncthreads();
    float s[kNBlocks][4];
    if (warp_active) {
#pragma unroll
      for (int n = 0; n < kNBlocks; ++n) {
        s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < kKSteps; kk += 2) {
          uint32_t b[4];  // k-steps kk and kk + 1 of key block n
          ldmatrix_x4(b, smem_addr(&ks[n * 8 + k_row][kk * 16 + k_col]));
          M::mma(s[n], qf[kk], b[0], b[1]);
          M::mma(s[n], qf[kk + 1], b[2], b[3]);
        }
      }
    }
    __syncthreads();  // every warp is done with K
    if (more) {
      load_tile<T, D>(ks, kp, p.ld_qkv, k0 + kKeys, kend);
      cp_async_commit();
    }
    uint32_t pf[kKeys / 16][4];
    if (warp_active) {
      const int nk = kend - k0;
      // Keys [lo, hi) of this tile are visible to each of this thread's rows: below the sequence end, not after
      // the row when causal, within the window when there is one.
      int lo0 = 0, lo1 = 0, hi0 = nk, hi1 = nk;
      if (p.causal) {
        hi0 = min(hi0, row0 - k0 + 1);
        hi1 = min(hi1, row1 - k0 + 1);
      }
      if (window) {
        lo0 = row0 - p.window_half - k0;
        lo1 = row1 - p.window_half - k0;
        hi0 = min(hi0, row0 + p.window_half - k0 + 1);
        hi1 = min(hi1, row1 + p.window_half - k0 + 1);
      }
      float mx0 = m0, mx1 = m1;
#pragma unroll
      for (int n = 0; n < kNBlocks; ++n) {
        const int j = n * 8 + t4 * 2;
        s[n][0] = j >= lo0 && j < hi0 ? s[n][0] * scale_log2 : -INFINITY;
        s[n][1] = j + 1 >= lo0 && j + 1 < hi0 ? s[n][1] * scale_log2 : -INFINITY;
        s[n][2] = j >= lo1 && j < hi1 ? s[n][2] * scale_log2 : -INFINITY;
        s[n][3] = j + 1 >= lo1 && j + 1 < hi1 ? s[n][3] * scale_log2 : -INFINITY;
        mx0 = fmaxf(mx0, fmaxf(s[n][0], s[n][1]));
        mx1 = fmaxf(mx1, fmaxf(s[n][2], s[n][3]));
      }
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
      // A row with no visible key yet (a window tile before its range; rows past the end) has max -inf: its
      // weights are exp2(-inf) = 0 against a base of 0 instead of NaN.
      const float b0 = mx0 == -INFINITY ? 0.f : mx0, b1 = mx1 == -INFINITY ? 0.f : mx1;
      const float c0 = exp2f(m0 - b0), c1 = exp2f(m1 - b1);
      m0 = mx0;
      m1 = mx1;
      l0 *= c0;
      l1 *= c1;
#pragma unroll
      for (int d = 0; d < kDBlocks; ++d) {
        o[d][0] *= c0;
        o[d][1] *= c0;
        o[d][2] *= c1;
        o[d][3] *= c1;
      }
#pragma unroll
      for (int n = 0; n < kNBlocks; ++n) {
        const float p0 = exp2f(s[n][0] - b0), p1 = exp2f(s[n][1] - b0);
        const float p2 = exp2f(s[n][2] - b1), p3 = exp2f(s[n][3] - b1);
        l0 += p0 + p1;
        l1 += p2 + p3;
        // The S accumulator of key blocks 2j, 2j+1 is the A fragment of k-step j of P·V.
        pf[n / 2][(n & 1) * 2 + 0] = M::pack(p0, p1);
        pf[n / 2][(n & 1) * 2 + 1] = M::pack(p2, p3);
      }
    }
    if (more) cp_async_wait<1>();  // V of this tile (the next K may still be in flight)
    else cp_async_wait<0>();
    __syncthreads();
    if (warp_active) {
#pragma unroll
      for (int j = 0; j < kKeys / 16; ++j) {
#pragma unroll
        for (int d = 0; d < kDBlocks; d += 2) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, smem_addr(&vs[j * 16 + v_row][d * 8 + v_col]));
          M::mma(o[d], pf[j], b[0], b[1]);
          M::mma(o[d + 1], pf[j], b[2], b[3]);
        }
      }
    }
    __syncthreads();  // every warp is done with V
    if (more) {
      load_tile<T, D>(vs, vp, p.ld_qkv, k0 + kKeys, kend);
      cp_async_commit();
    }
  }
  if (!warp_active) return;
  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  const float inv0 = 1.f / l0, inv1 = 1.f / l1;
  if (row0 < kend) {
    uint32_t* op = reinterpret_cast<uint32_t*>(out + static_cast<std::size_t>(row0) * p.ld_out);
#pragma unroll
    for (int d = 0; d < kDBlocks; ++d) op[d * 4 + t4] = M::pack(o[d][0] * inv0, o[d][1] * inv0);
  }
  if (row1 < kend) {
    uint32_t* op = reinterpret_cast<uint32_t*>(out + static_cast<std::size_t>(row1) * p.ld_out);
#pragma unroll
    for (int d = 0; d < kDBlocks; ++d) op[d * 4 + t4] = M::pack(o[d][2] * inv1, o[d][3] * inv1);
  }
}

template <typename T, int D>
void launch(const AttentionParams& p, float scale_log2, cudaStream_t stream) {
  dim3 grid(p.batch.max_tiles, p.num_heads);
  launch_pdl(attention_mma_kernel<T, D>, grid, dim3(kThreads), 0, stream, p, scale_log2);
}

bool aligned16(const void* ptr) { return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0; }

}  // namespace

bool attention_mma_supported(const AttentionParams& p) {
  if (p.dtype != DType::kF16 && p.dtype != DType::kBF16) return false;
  if (p.head_dim != 32 && p.head_dim != 64 && p.head_dim != 128) return false;
  // 16-byte row chunks for cp.async and the zero-tail stores.
  return aligned16(p.q) && aligned16(p.k) && aligned16(p.v) && aligned16(p.out) && p.ld_qkv % 8 == 0 &&
         p.ld_out % 8 == 0;
}

void attention_varlen_mma(const AttentionParams& p, float scale_log2, cudaStream_t stream) {
  auto go = [&](auto t) {
    using T = decltype(t);
    if (p.head_dim == 32) launch<T, 32>(p, scale_log2, stream);
    else if (p.head_dim == 64) launch<T, 64>(p, scale_log2, stream);
    else launch<T, 128>(p, scale_log2, stream);
  };
  if (p.dtype == DType::kF16) go(__half{});
  else go(__nv_bfloat16{});
}

}  // namespace fathom::cuda
