// Whether kernels launched with launch_pdl() may overlap the kernel before them (common.cuh).
#include <cstdlib>
#include <cstring>

#include "backends/cuda/kernels/common.cuh"

namespace fathom::cuda::detail {

namespace {

constexpr int kMaxDevices = 64;

// -1 unknown, 0 no, 1 yes; per device ordinal. Benign race: every thread computes the same value.
int g_pdl[kMaxDevices] = {};
bool g_pdl_init[kMaxDevices] = {};

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
  if (!g_pdl_init[dev]) {
    int major = 0;
    g_pdl[dev] = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && major >= 9;
    g_pdl_init[dev] = true;
  }
  return g_pdl[dev] != 0;
}

}  // namespace fathom::cuda::detail
