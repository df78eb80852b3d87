#include "support/sm_probe.h"

#include "backends/cuda/check.h"

namespace fathom::testing {
namespace {

constexpr int kMaxSms = 1024;

__global__ void mark_sm(unsigned* seen) {
  unsigned id = 0;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(id));
  if (threadIdx.x != 0) return;
  if (id < kMaxSms) atomicOr(&seen[id / 32], 1u << (id % 32));
  const long long start = clock64();
  while (clock64() - start < 20000) {
  }
}

}  // namespace

std::set<int> sms_reached(cudaStream_t stream, int blocks) {
  unsigned* seen = nullptr;
  FATHOM_CUDA_CHECK(cudaMalloc(&seen, kMaxSms / 8));
  FATHOM_CUDA_CHECK(cudaMemsetAsync(seen, 0, kMaxSms / 8, stream));
  mark_sm<<<blocks, 32, 0, stream>>>(seen);
  unsigned host[kMaxSms / 32] = {};
  FATHOM_CUDA_CHECK(cudaMemcpyAsync(host, seen, sizeof host, cudaMemcpyDeviceToHost, stream));
  FATHOM_CUDA_CHECK(cudaStreamSynchronize(stream));
  FATHOM_CUDA_CHECK(cudaFree(seen));
  std::set<int> ids;
  for (int i = 0; i < kMaxSms; ++i)
    if (host[i / 32] & (1u << (i % 32))) ids.insert(i);
  return ids;
}

}  // namespace fathom::testing
