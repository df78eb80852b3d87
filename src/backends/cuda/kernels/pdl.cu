// Whether kernels launched with launch_pdl() may overlap the kernel before them (common.cuh).
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "backends/cuda/kernels/common.cuh"

namespace fathom::cuda::detail {

namespace {

constexpr int kMaxDevices = 64;

// Per device ordinal: 0 not asked yet, 1 no, 2 yes. Threads asking at once all store the same answer.
std::atomic<int> g_pdl[kMaxDevices];

bool pdl_disabled_by_env() {
  static const bool off = [] {
    const char* v = std::getenv("FATHOM_CUDA_PDL");
    return v && std::strcmp(v, "0") == 0;
  }();
  return off;
}

}  // namespace

bool pdl_supported() {
  if (pdl_disabled_by_env()) return false;
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= kMaxDevices) return false;
  int known = g_pdl[dev].load(std::memory_order_relaxed);
  if (known == 0) {
    int major = 0;
    const bool yes = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && major >= 9;
    known = yes ? 2 : 1;
    g_pdl[dev].store(known, std::memory_order_relaxed);
  }
  return known == 2;
}

}  // namespace fathom::cuda::detail
