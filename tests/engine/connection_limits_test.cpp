// The server raises its open-file limit towards what --max-connections needs, within the hard limit.
#include <gtest/gtest.h>

#include <sys/resource.h>

#include "server/connection_queue.h"

namespace fathom::server {
namespace {

TEST(ConnectionLimits, RaisesTheOpenFileLimitWithinTheHardLimit) {
  rlimit original{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &original), 0);
  if (original.rlim_max != RLIM_INFINITY && original.rlim_max < 1300) GTEST_SKIP() << "hard limit too low";
  rlimit low = original;
  low.rlim_cur = 512;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);

  const std::size_t now = raise_open_file_limit(1000);
  EXPECT_EQ(now, 1256u);  // 1,000 connections + 256
  rlimit after{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &after), 0);
  EXPECT_EQ(after.rlim_cur, 1256u);
  EXPECT_EQ(after.rlim_max, original.rlim_max);  // never above (or changing) the hard limit
  // Already high enough: left alone.
  EXPECT_EQ(raise_open_file_limit(10), 1256u);

  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &original), 0);
}

}  // namespace
}  // namespace fathom::server
