#include "app/progress_bar.h"

#include <gtest/gtest.h>

#include <chrono>
#include <sstream>

namespace fathom::app {
namespace {

TEST(ProgressBar, RendersFractionBarAndSeconds) {
  EXPECT_EQ(render_progress(38.5, 77.0, 10), "[#####.....]  50%  38.5 / 77.0 s audio");
  EXPECT_EQ(render_progress(0, 77.0, 4), "[....]   0%  0.0 / 77.0 s audio");
  EXPECT_EQ(render_progress(77.0, 77.0, 4), "[####] 100%  77.0 / 77.0 s audio");
}

TEST(ProgressBar, ClampsOutOfRangeValues) {
  EXPECT_EQ(render_progress(90, 60, 4), "[####] 100%  60.0 / 60.0 s audio");
  EXPECT_EQ(render_progress(-3, 60, 4), "[....]   0%  0.0 / 60.0 s audio");
  EXPECT_EQ(render_progress(5, 0, 4), "[....]   0%  0.0 / 0.0 s audio");
}

TEST(ProgressBar, RedrawsAtMostOncePerIntervalAndAlwaysOnFinish) {
  std::ostringstream out;
  ProgressBar bar(out, 60.0, std::chrono::hours(1));
  bar.update(10);
  bar.update(20);  // within the interval: not drawn
  bar.finish(60);
  EXPECT_EQ(out.str(), "\r" + render_progress(10, 60) + "\r" + render_progress(60, 60) + "\n");
}

}  // namespace
}  // namespace fathom::app
