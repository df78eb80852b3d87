// CUDA log-mel: one block per STFT frame computes the 201-bin power spectrum by a direct DFT (80k
// multiply-adds per frame, from a shared twiddle table) and the mel projection; a second kernel applies
// the global-max clamp and scaling.
#include "backends/cuda/mel/log_mel.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

namespace fathom::cuda {
namespace {

constexpr int kNFft = 400;
constexpr int kHop = 160;
constexpr int kBins = kNFft / 2 + 1;
constexpr int kThreads = 256;
constexpr int kMaxMels = 256;

// Monotonic map float -> uint32 so that atomicMax on the key is a max on the float. Key 0 sorts below
// every float, so a zeroed workspace is "no value yet".
__device__ inline unsigned float_to_key(float f) {
  unsigned u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ inline float key_to_float(unsigned k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

__device__ inline int64_t reflect(int64_t i, int64_t n) {
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

__global__ void log_mel_frames_kernel(LogMelParams p, int64_t n_frames, unsigned* max_key) {
  __shared__ float frame[kNFft];
  __shared__ float cos_t[kNFft];
  __shared__ float sin_t[kNFft];
  __shared__ float power[kBins];
  __shared__ float block_max[kThreads / 32];
  const int64_t t = blockIdx.x;
  const int tid = threadIdx.x;
  for (int j = tid; j < kNFft; j += blockDim.x) {
    float s, c;
    sincospif(2.0f * j / kNFft, &s, &c);
    cos_t[j] = c;
    sin_t[j] = s;
    const int64_t idx = reflect(t * kHop - kNFft / 2 + j, p.n_samples);
    const float x = idx < p.n_valid ? p.samples[idx] : 0.0f;
    const float w = 0.5f - 0.5f * c;  // periodic Hann: 0.5 - 0.5 cos(2 pi j / N)
    frame[j] = w * x;
  }
  __syncthreads();
  for (int k = tid; k < kBins; k += blockDim.x) {
    float re = 0.0f, im = 0.0f;
    int idx = 0;  // (j * k) mod N
    for (int j = 0; j < kNFft; ++j) {
      re = fmaf(frame[j], cos_t[idx], re);
      im = fmaf(frame[j], sin_t[idx], im);
      idx += k;
      if (idx >= kNFft) idx -= kNFft;
    }
    power[k] = re * re + im * im;
  }
  __syncthreads();
  float local_max = -INFINITY;
  for (int m = tid; m < p.n_mels; m += blockDim.x) {
    const float* w = p.filters + static_cast<int64_t>(m) * kBins;
    float acc = 0.0f;
    for (int k = 0; k < kBins; ++k) acc = fmaf(__ldg(w + k), power[k], acc);
    const float v = log10f(fmaxf(acc, 1e-10f));
    p.out[static_cast<int64_t>(m) * n_frames + t] = v;
    local_max = fmaxf(local_max, v);
  }
  for (int off = 16; off > 0; off >>= 1) local_max = fmaxf(local_max, __shfl_xor_sync(0xffffffffu, local_max, off));
  if ((tid & 31) == 0) block_max[tid >> 5] = local_max;
  __syncthreads();
  if (tid == 0) {
    float m = block_max[0];
    for (int i = 1; i < kThreads / 32; ++i) m = fmaxf(m, block_max[i]);
    atomicMax(max_key, float_to_key(m));
  }
}

__global__ void log_mel_normalise_kernel(float* out, int64_t n, const unsigned* max_key) {
  const float floor_val = key_to_float(*max_key) - 8.0f;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = (fmaxf(out[i], floor_val) + 4.0f) / 4.0f;
}

}  // namespace

std::size_t log_mel_workspace_bytes() { return 256; }

int launch_log_mel(const LogMelParams& p, void* stream_ptr) {
  if (!p.samples || !p.filters || !p.out || !p.workspace || p.n_mels < 1 || p.n_mels > kMaxMels ||
      p.n_valid < 0 || p.n_samples < kHop)
    return -1;
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  const int64_t n_frames = p.n_samples / kHop;
  if (n_frames > 0x7fffffff) return -1;
  auto* max_key = static_cast<unsigned*>(p.workspace);
  cudaError_t err = cudaMemsetAsync(max_key, 0, sizeof(unsigned), stream);
  if (err != cudaSuccess) return static_cast<int>(err);
  log_mel_frames_kernel<<<static_cast<unsigned>(n_frames), kThreads, 0, stream>>>(p, n_frames, max_key);
  const int64_t total = n_frames * p.n_mels;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((total + kThreads - 1) / kThreads, 65535));
  log_mel_normalise_kernel<<<blocks, kThreads, 0, stream>>>(p.out, total, max_key);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace fathom::cuda
