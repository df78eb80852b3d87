#pragma once
// Which SMs a CUDA stream's kernels reach: a test probe for SM partitions (backends/cuda/sm_partition.h).
#include <cuda_runtime_api.h>

#include <set>

namespace fathom::testing {

// Runs `blocks` short blocks on `stream` (each holds its SM for a few microseconds so that the blocks spread
// over every SM the stream may use) and returns the ids (%smid) of the SMs they ran on. Synchronises the
// stream; throws fathom::Exception on a CUDA error.
std::set<int> sms_reached(cudaStream_t stream, int blocks);

}  // namespace fathom::testing
