#pragma once
// Row scatter on a CUDA device (raw-pointer API): row t of a contiguous [rows, row_bytes] source is
// copied to the device address dst[t]. Used to append a decoder step's new key/value rows to many
// per-sequence caches in one launch.
//
// Plain header: no CUDA types, so CPU code may include it. Runs on `stream` (a cudaStream_t); nothing
// allocates, synchronises or reads device memory on the host, so a launch may be captured in a graph.
#include <cstdint>

namespace fathom::cuda {

struct ScatterRowsParams {
  const void* src = nullptr;      // device, [rows, row_bytes] contiguous
  const int64_t* dst = nullptr;   // device, [rows] destination byte addresses
  int64_t rows = 0;
  int64_t row_bytes = 0;          // > 0
};

// Returns 0 on success, else a cudaError_t value (or -1 for invalid parameters).
int launch_scatter_rows(const ScatterRowsParams& params, void* stream);

}  // namespace fathom::cuda
