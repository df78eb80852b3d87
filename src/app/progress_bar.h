#pragma once
// A one-line progress bar for `fathom transcribe` on long files, written to a terminal with '\r'.
#include <chrono>
#include <ostream>
#include <string>

namespace fathom::app {

// "[##########..........]  50%  38.5 / 77.0 s audio" for `done` of `total` seconds, the bar `width`
// characters wide. `done` is clamped to [0, total]; total <= 0 renders 0 %.
std::string render_progress(double done, double total, int width = 30);

// Redraws render_progress() on `out` (with a leading '\r') at most every `interval`, and always on finish().
// Not thread-safe: one caller.
class ProgressBar {
 public:
  ProgressBar(std::ostream& out, double total_seconds,
              std::chrono::milliseconds interval = std::chrono::milliseconds(100));
  void update(double done_seconds);
  // Draws the final state and ends the line.
  void finish(double done_seconds);

 private:
  void draw(double done_seconds);

  std::ostream& out_;
  double total_;
  std::chrono::milliseconds interval_;
  std::chrono::steady_clock::time_point last_{};
  bool drawn_ = false;
};

}  // namespace fathom::app
