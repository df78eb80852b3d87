// One block per row; 16-byte copies when the source, every destination and the row length allow it
// (checked on the device per row), else 4-byte or byte copies.
#include "backends/cuda/rows/scatter_rows.h"

#include <cuda_runtime.h>

namespace fathom::cuda {
namespace {

constexpr int kThreads = 128;

__global__ void scatter_rows_kernel(const unsigned char* src, const int64_t* dst, int64_t row_bytes) {
  const int64_t r = blockIdx.x;
  const unsigned char* s = src + r * row_bytes;
  auto* d = reinterpret_cast<unsigned char*>(dst[r]);
  const auto sa = reinterpret_cast<uintptr_t>(s), da = reinterpret_cast<uintptr_t>(d);
  if (((sa | da | static_cast<uintptr_t>(row_bytes)) & 15u) == 0) {
    const int64_t n = row_bytes / 16;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      reinterpret_cast<uint4*>(d)[i] = reinterpret_cast<const uint4*>(s)[i];
  } else if (((sa | da | static_cast<uintptr_t>(row_bytes)) & 3u) == 0) {
    const int64_t n = row_bytes / 4;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      reinterpret_cast<uint32_t*>(d)[i] = reinterpret_cast<const uint32_t*>(s)[i];
  } else {
    for (int64_t i = threadIdx.x; i < row_bytes; i += blockDim.x) d[i] = s[i];
  }
}

}  // namespace

int launch_scatter_rows(const ScatterRowsParams& p, void* stream) {
  if (p.rows < 0 || p.row_bytes <= 0 || p.rows > 0x7fffffff || (p.rows > 0 && (!p.src || !p.dst))) return -1;
  if (p.rows == 0) return 0;
  scatter_rows_kernel<<<static_cast<unsigned>(p.rows), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      static_cast<const unsigned char*>(p.src), p.dst, p.row_bytes);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace fathom::cuda
