// LayerNorm (optionally fused with a residual add) and the fused BERT embedding + LayerNorm.
#include <algorithm>

#include "backends/cuda/kernels.h"
#include "backends/cuda/kernels/common.cuh"

namespace fathom::cuda {
namespace {
using namespace detail;

constexpr int kThreads = 256;
constexpr int kMaxPerThread = 32;  // cols <= 8192

// Normalises the row held in registers `v` (`cols` valid elements, element i*kThreads+tid) and writes it.
template <typename T, int N>
__device__ __forceinline__ void normalize_store(float (&v)[N], int cols, const T* gamma, const T* beta, float eps,
                                                T* out, float* scratch) {
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    const int c = i * kThreads + threadIdx.x;
    if (c < cols) s += v[i];
  }
  const float mean = block_sum(s, scratch) / cols;
  float q = 0.f;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    const int c = i * kThreads + threadIdx.x;
    if (c < cols) { const float d = v[i] - mean; q += d * d; }
  }
  const float rstd = rsqrtf(block_sum(q, scratch) / cols + eps);
#pragma unroll
  for (int i = 0; i < N; ++i) {
    const int c = i * kThreads + threadIdx.x;
    if (c < cols) out[c] = from_f32<T>((v[i] - mean) * rstd * to_f32(gamma[c]) + to_f32(beta[c]));
  }
}

template <typename T, int N>
__global__ void __launch_bounds__(kThreads) layer_norm_kernel(LayerNormParams p) {
  __shared__ float scratch[32];
  griddep_wait();  // launched with launch_pdl
  const int r = blockIdx.x;
  const T* in = static_cast<const T*>(p.in) + static_cast<std::size_t>(r) * p.ld_in;
  const T* res = p.residual ? static_cast<const T*>(p.residual) + static_cast<std::size_t>(r) * p.ld_residual : nullptr;
  float v[N];
#pragma unroll
  for (int i = 0; i < N; ++i) {
    const int c = i * kThreads + threadIdx.x;
    v[i] = 0.f;
    if (c < p.cols) v[i] = to_f32(in[c]) + (res ? to_f32(res[c]) : 0.f);
  }
  normalize_store<T, N>(v, p.cols, static_cast<const T*>(p.gamma), static_cast<const T*>(p.beta), p.eps,
                        static_cast<T*>(p.out) + static_cast<std::size_t>(r) * p.ld_out, scratch);
}

template <typename T, int N>
__global__ void __launch_bounds__(kThreads) embedding_kernel(EmbeddingParams p) {
  __shared__ float scratch[32];
  const int t = blockIdx.x;
  const int id = min(max(p.ids[t], 0), p.vocab - 1);
  const int pos = p.position ? min(max(p.position_ids[t], 0), p.max_positions - 1) : 0;
  const int typ = p.token_type_ids ? min(max(p.token_type_ids[t], 0), p.type_vocab - 1) : 0;
  const T* w = static_cast<const T*>(p.word) + static_cast<std::size_t>(id) * p.hidden;
  const T* ps = p.position ? static_cast<const T*>(p.position) + static_cast<std::size_t>(pos) * p.hidden : nullptr;
  const T* ty = p.token_type ? static_cast<const T*>(p.token_type) + static_cast<std::size_t>(typ) * p.hidden : nullptr;
  float v[N];
#pragma unroll
  for (int i = 0; i < N; ++i) {
    const int c = i * kThreads + threadIdx.x;
    v[i] = 0.f;
    if (c < p.hidden) v[i] = to_f32(w[c]) + (ps ? to_f32(ps[c]) : 0.f) + (ty ? to_f32(ty[c]) : 0.f);
  }
  T* out = static_cast<T*>(p.out) + static_cast<std::size_t>(t) * p.hidden;
  if (!p.gamma) {
#pragma unroll
    for (int i = 0; i < N; ++i) {
      const int c = i * kThreads + threadIdx.x;
      if (c < p.hidden) out[c] = from_f32<T>(v[i]);
    }
    return;
  }
  normalize_store<T, N>(v, p.hidden, static_cast<const T*>(p.gamma), static_cast<const T*>(p.beta), p.eps,
                        static_cast<T*>(p.out) + static_cast<std::size_t>(t) * p.hidden, scratch);
}

// Picks the register-cache size for `cols` (4, 8 or 32 elements per thread).
template <typename F>
void with_cache_size(int cols, F&& f) {
  if (cols <= 4 * kThreads) f(std::integral_constant<int, 4>{});
  else if (cols <= 8 * kThreads) f(std::integral_constant<int, 8>{});
  else f(std::integral_constant<int, kMaxPerThread>{});
}

}  // namespace

void layer_norm(const LayerNormParams& p, cudaStream_t stream) {
  require(p.rows >= 0 && p.cols > 0 && p.cols <= kMaxPerThread * kThreads, "layer_norm",
          "cols must be in 1..8192, got " + std::to_string(p.cols));
  require(p.in && p.gamma && p.beta && p.out && p.ld_in >= p.cols && p.ld_out >= p.cols &&
              (!p.residual || p.ld_residual >= p.cols),
          "layer_norm", "null pointer or bad leading dimension");
  if (p.rows == 0) return;
  dispatch_float(p.dtype, "layer_norm", [&](auto t) {
    using T = decltype(t);
    with_cache_size(p.cols, [&](auto n) { launch_pdl(layer_norm_kernel<T, decltype(n)::value>, dim3(p.rows), dim3(kThreads), 0, stream, p); });
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

void embedding_layer_norm(const EmbeddingParams& p, cudaStream_t stream) {
  require(p.tokens >= 0 && p.hidden > 0 && p.hidden <= kMaxPerThread * kThreads, "embedding",
          "hidden must be in 1..8192, got " + std::to_string(p.hidden));
  require(p.ids && p.word && p.out && p.vocab > 0 && (!p.position || (p.position_ids && p.max_positions > 0)) &&
              (!p.gamma || p.beta) && (!p.token_type || p.type_vocab > 0),
          "embedding", "null pointer or empty table");
  if (p.tokens == 0) return;
  dispatch_float(p.dtype, "embedding", [&](auto t) {
    using T = decltype(t);
    with_cache_size(p.hidden, [&](auto n) { embedding_kernel<T, decltype(n)::value><<<p.tokens, kThreads, 0, stream>>>(p); });
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

}  // namespace fathom::cuda
