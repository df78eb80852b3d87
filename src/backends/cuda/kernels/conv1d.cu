// im2col for the 1-D convolution (ops::conv1d on CUDA: im2col into scratch + one cuBLASLt GEMM with bias).
//
// One block per (tile of kTileT output steps, tile of kTileC input channels, batch item). The input window
// the tile needs ((kTileT - 1) * stride + k steps x kTileC channels) is staged in shared memory with
// reads coalesced along the input's contiguous axis (channels for time-major, time for channel-major),
// then every output row of the tile is written as kTileC * k contiguous elements. Windows too wide for
// shared memory (large stride or kernel) take a direct element-per-thread path.
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/sequence_kernels.h"

namespace fathom::cuda {
namespace {
using namespace detail;

constexpr int kTileT = 32;
constexpr int kTileC = 32;
constexpr int kThreads = 256;
constexpr std::size_t kMaxSmem = 48 * 1024;

template <typename T>
__global__ void __launch_bounds__(kThreads) im2col_tiled(Im2colParams p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* tile = reinterpret_cast<T*>(smem_raw);  // [kTileC][span]
  const int t0 = blockIdx.x * kTileT, c0 = blockIdx.y * kTileC, b = blockIdx.z;
  const int span = (kTileT - 1) * p.stride + p.k;
  const int first = t0 * p.stride - p.pad;  // input step of tile[.][0]
  const T* x = static_cast<const T*>(p.x) + static_cast<std::size_t>(b) * p.t_in * p.c_in;
  const int n = span * kTileC;
  for (int i = threadIdx.x; i < n; i += kThreads) {
    int cl, tt;
    if (p.channel_major) { cl = i / span; tt = i % span; }  // time fastest: contiguous reads
    else { tt = i / kTileC; cl = i % kTileC; }               // channel fastest: contiguous reads
    const int t = first + tt, c = c0 + cl;
    T v = from_f32<T>(0.f);
    if (t >= 0 && t < p.t_in && c < p.c_in)
      v = p.channel_major ? x[static_cast<std::size_t>(c) * p.t_in + t] : x[static_cast<std::size_t>(t) * p.c_in + c];
    tile[cl * span + tt] = v;
  }
  __syncthreads();
  const int nc = min(kTileC, p.c_in - c0);
  const int row_len = nc * p.k;
  const int ck = p.c_in * p.k;
  T* cols = static_cast<T*>(p.cols);
  const int nt = min(kTileT, p.t_out - t0);
  for (int i = threadIdx.x; i < nt * row_len; i += kThreads) {
    const int tl = i / row_len, e = i % row_len;
    const int cl = e / p.k, j = e % p.k;
    cols[(static_cast<std::size_t>(b) * p.t_out + t0 + tl) * ck + c0 * p.k + e] = tile[cl * span + tl * p.stride + j];
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) im2col_direct(Im2colParams p) {
  const int ck = p.c_in * p.k;
  const std::size_t total = static_cast<std::size_t>(p.batch) * p.t_out * ck;
  const T* x = static_cast<const T*>(p.x);
  T* cols = static_cast<T*>(p.cols);
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(kThreads) + threadIdx.x; i < total;
       i += static_cast<std::size_t>(gridDim.x) * kThreads) {
    const std::size_t row = i / ck;
    const int e = static_cast<int>(i % ck);
    const int b = static_cast<int>(row / p.t_out), t = static_cast<int>(row % p.t_out);
    const int c = e / p.k, j = e % p.k;
    const int src = t * p.stride + j - p.pad;
    T v = from_f32<T>(0.f);
    if (src >= 0 && src < p.t_in) {
      const std::size_t base = static_cast<std::size_t>(b) * p.t_in * p.c_in;
      v = p.channel_major ? x[base + static_cast<std::size_t>(c) * p.t_in + src]
                          : x[base + static_cast<std::size_t>(src) * p.c_in + c];
    }
    cols[i] = v;
  }
}

}  // namespace

void im2col_1d(const Im2colParams& p, cudaStream_t stream) {
  require(p.batch >= 0 && p.t_in > 0 && p.c_in > 0 && p.t_out >= 0, "im2col_1d", "bad shape");
  require(p.k >= 1 && p.stride >= 1 && p.pad >= 0, "im2col_1d", "bad kernel, stride or padding");
  require(p.x && p.cols, "im2col_1d", "null pointer");
  if (p.batch == 0 || p.t_out == 0) return;
  dispatch_float(p.dtype, "im2col_1d", [&](auto tag) {
    using T = decltype(tag);
    const std::size_t span = static_cast<std::size_t>(kTileT - 1) * p.stride + p.k;
    const std::size_t smem = span * kTileC * sizeof(T);
    if (smem <= kMaxSmem && p.batch <= 65535) {
      const dim3 grid((p.t_out + kTileT - 1) / kTileT, (p.c_in + kTileC - 1) / kTileC, p.batch);
      im2col_tiled<T><<<grid, kThreads, smem, stream>>>(p);
    } else {
      const std::size_t total = static_cast<std::size_t>(p.batch) * p.t_out * p.c_in * p.k;
      const unsigned blocks = static_cast<unsigned>(std::min<std::size_t>((total + kThreads - 1) / kThreads, 1u << 20));
      im2col_direct<T><<<blocks, kThreads, 0, stream>>>(p);
    }
    FATHOM_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace fathom::cuda
