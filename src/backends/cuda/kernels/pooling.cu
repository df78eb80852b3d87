// Sequence pooling (cls / mean / max / last) over a packed varlen batch, optional fused L2 normalisation.
#include "backends/cuda/kernels.h"
#include "backends/cuda/kernels/common.cuh"

namespace fathom::cuda {
namespace {
using namespace detail;

constexpr int kThreads = 256;

// One block per sequence; threads stride over the hidden dimension.
template <typename T, typename O>
__global__ void __launch_bounds__(kThreads) pool_kernel(PoolParams p) {
  __shared__ float scratch[32];
  const int s = blockIdx.x;
  if (s >= p.batch.header[0]) return;
  const int beg = p.batch.cu_seqlens[s], end = p.batch.cu_seqlens[s + 1];
  const T* in = static_cast<const T*>(p.in);
  O* out = static_cast<O*>(p.out) + static_cast<std::size_t>(s) * p.hidden;
  float sq = 0.f;
  for (int c = threadIdx.x; c < p.hidden; c += kThreads) {
    float v = 0.f;  // an empty sequence pools to zeros
    if (end > beg) switch (p.mode) {
      case PoolMode::kCls: v = to_f32(in[static_cast<std::size_t>(beg) * p.ld_in + c]); break;
      case PoolMode::kLast: v = to_f32(in[static_cast<std::size_t>(end - 1) * p.ld_in + c]); break;
      case PoolMode::kMean: {
        // Summed in double: a long sequence's f32 running sum would add ~sqrt(n) ulps to the mean.
        double acc = 0.0;
        for (int t = beg; t < end; ++t) acc += to_f32(in[static_cast<std::size_t>(t) * p.ld_in + c]);
        v = static_cast<float>(acc / static_cast<double>(end - beg));
        break;
      }
      default: {
        float acc = -INFINITY;
        for (int t = beg; t < end; ++t) acc = fmaxf(acc, to_f32(in[static_cast<std::size_t>(t) * p.ld_in + c]));
        v = acc;
        break;
      }
    }
    out[c] = from_f32<O>(v);
    sq += v * v;
  }
  if (!p.normalize) return;
  const float inv = 1.f / fmaxf(sqrtf(block_sum(sq, scratch)), 1e-12f);
  for (int c = threadIdx.x; c < p.hidden; c += kThreads) out[c] = from_f32<O>(to_f32(out[c]) * inv);  // own writes
}

}  // namespace

void pool(const PoolParams& p, cudaStream_t stream) {
  require(p.hidden > 0 && p.ld_in >= p.hidden && p.in && p.out && p.batch.header && p.batch.max_seqs > 0, "pool",
          "null pointer or bad shape");
  dispatch_float(p.dtype, "pool", [&](auto t) {
    using T = decltype(t);
    if (p.out_dtype == DType::kF32) pool_kernel<T, float><<<p.batch.max_seqs, kThreads, 0, stream>>>(p);
    else if (p.out_dtype == p.dtype) pool_kernel<T, T><<<p.batch.max_seqs, kThreads, 0, stream>>>(p);
    else throw Exception(ErrorCode::kUnsupported, "pool: output dtype must be float32 or the input dtype");
  });
  FATHOM_CUDA_CHECK_LAUNCH();
}

}  // namespace fathom::cuda
