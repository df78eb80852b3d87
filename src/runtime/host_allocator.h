#pragma once
// Host allocator settings for a long-running server.
//
// glibc's malloc serves a large block from its arenas instead of mmap once a block of that size has been
// freed (the "dynamic mmap threshold" rises up to 32 MiB). A server whose connection threads each allocate
// and free large request buffers (uploaded audio, decoded samples, log-mel windows: hundreds of KiB each)
// then fragments one arena per thread, and resident memory keeps creeping up under steady load.
// tune_host_allocator() pins the threshold at kMmapThresholdBytes, so such buffers are mapped on allocation
// and returned to the system on free; smaller allocations are unaffected.
#include <cstddef>

namespace fathom {

inline constexpr std::size_t kMmapThresholdBytes = 256 * 1024;

// Applies the setting above, unless the environment already sets MALLOC_MMAP_THRESHOLD_ (the user's choice
// wins). Returns whether it was applied. Call once at start-up, before threads start; a no-op returning
// false on C libraries other than glibc.
bool tune_host_allocator();

}  // namespace fathom
