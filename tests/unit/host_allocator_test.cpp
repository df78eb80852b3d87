// tune_host_allocator(): after a large block was freed, a later large block is still mapped (and so given
// back to the system on free) instead of being carved out of an arena.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "runtime/host_allocator.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define FATHOM_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FATHOM_TEST_ASAN 1
#endif
#endif

namespace fathom {
namespace {

TEST(HostAllocator, LargeBlocksStayMappedAfterALargerOneWasFreed) {
#if !defined(__GLIBC__) || defined(FATHOM_TEST_ASAN)
  GTEST_SKIP() << "glibc's malloc only (not under AddressSanitizer's)";
#else
  if (std::getenv("MALLOC_MMAP_THRESHOLD_")) GTEST_SKIP() << "MALLOC_MMAP_THRESHOLD_ is set";
  ASSERT_TRUE(tune_host_allocator());
  // Freeing a mapped 4 MiB block raises glibc's dynamic threshold to 4 MiB unless it is pinned.
  void* big = std::malloc(4u << 20);
  ASSERT_NE(big, nullptr);
  std::memset(big, 1, 4u << 20);
  std::free(big);
  const auto before = mallinfo2().hblks;
  void* block = std::malloc(kMmapThresholdBytes * 4);  // 1 MiB: above the pinned threshold
  ASSERT_NE(block, nullptr);
  EXPECT_EQ(mallinfo2().hblks, before + 1) << "a 1 MiB block came from an arena, not from mmap";
  std::free(block);
  EXPECT_EQ(mallinfo2().hblks, before) << "the mapped block was not returned";
#endif
}

}  // namespace
}  // namespace fathom
