#pragma once
// A small persistent thread pool for CPU ops (GEMMs are threaded by OpenBLAS itself).
//
// parallel_for(n, grain, fn) splits [0, n) into at most num_threads() contiguous chunks of at least
// `grain` items and runs fn(begin, end, chunk) for each, chunk in [0, num_threads()); the calling thread
// runs one chunk. Returns when all chunks are done. If the pool is already busy (a parallel_for from
// another thread, or nested), the work runs inline on the caller as one chunk (chunk index 0).
// `fn` must not throw.
#include <cstdint>
#include <functional>

namespace fathom::cpu {

int num_threads();
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn);

}  // namespace fathom::cpu
