// Sequence pooling (cls / mean / max / last) over a packed varlen batch, optional fused L2 normalisation.
#include "backends/cuda/kernels.h"
#include "backends/cuda/kernels/common.cuh"

namespace fathom::cuda {
namespace {
using namespace detail;

constexpr int kThreads = 256;

// One block per sequence; threads stride over the hidden dimension.
template <typename T>
__global__ void __launch_bounds__(kThreads) pool_kernel(PoolParams p) {
  __shared__ float scratch[32];
  const int s = blockIdx.x;
  if (s >= p.batch.header[0]) return;
  const int beg = p.batch.cu_seqlens[s], end = p.batch.cu_seqlens[s + 1];
  const T* in = static_cast<const T*>(p.in);
  float* out = p.out + static_cast<std::size_t>(s) * p.hidden;
  float sq = 0.f;
  for (int c = threadIdx.x; c < p.hidden; c += kThreads) {
    float v;
    switch (p.mode) {
      case PoolMode::kCls: v = to_f32(in[static_cast<std::size_t>(beg) * p.ld_in + c]); break;
      case PoolMode::kLast: v = to_f32(in[static_cast<std::size_t>(end - 1) * p.ld_in + c]); break;
      case PoolMode::kMean: {
        float acc = 0.f;
        for (int t = beg; t < end; ++t) acc += to_f32(in[static_cast<std::size_t>(t) * p.ld_in + c]);
        v = acc / static_cast<float>(end - beg);
        break;
      }
      default: {
        float acc = -INFINITY;
        for (int t = beg; t < end; ++t) acc = fmaxf(acc, to_f32(in[static_cast<std::size_t>(t) * p.ld_in + c]));
        v = acc;
        break;
      }
    }
    out[c] = v;
    sq += v * v;
  }
  if (!p.normalize) return;
  const float inv = 1.f / fmaxf(sqrtf(block_sum(sq, scratch)), 1e-12f);
  for (int c = threadIdx.x; c < p.hidden; c += kThreads) out[c] *= inv;  // same thread wrote it
}

}  // namespace

void pool(const PoolParams& p, cudaStream_t stream) {
  require(p.hidden > 0 && p.ld_in >= p.hidden && p.in && p.out && p.batch.header && p.batch.max_seqs > 0, "pool",
          "null pointer or bad shape");
  dispatch_float(p.dtype, "pool", [&](auto t) {
    using T = decltype(t);
    pool_kernel<T><<<p.batch.max_seqs, kThreads, 0, stream>>>(p);
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

}  // namespace fathom::cuda
