#include "app/progress_bar.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace fathom::app {

std::string render_progress(double done, double total, int width) {
  width = std::max(1, width);
  const double fraction = total > 0 ? std::clamp(done / total, 0.0, 1.0) : 0.0;
  const int filled = static_cast<int>(std::floor(fraction * width + 1e-9));
  std::string line = "[" + std::string(static_cast<std::size_t>(filled), '#') +
                     std::string(static_cast<std::size_t>(width - filled), '.') + "]";
  char tail[96];
  std::snprintf(tail, sizeof(tail), " %3d%%  %.1f / %.1f s audio", static_cast<int>(std::floor(fraction * 100 + 1e-9)),
                std::clamp(done, 0.0, std::max(total, 0.0)), std::max(total, 0.0));
  return line + tail;
}

ProgressBar::ProgressBar(std::ostream& out, double total_seconds, std::chrono::milliseconds interval)
    : out_(out), total_(total_seconds), interval_(interval) {}

void ProgressBar::update(double done_seconds) {
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_ < interval_) return;
  last_ = now;
  draw(done_seconds);
}

void ProgressBar::finish(double done_seconds) {
  draw(done_seconds);
  out_ << "\n";
  out_.flush();
}

void ProgressBar::draw(double done_seconds) {
  drawn_ = true;
  out_ << "\r" << render_progress(done_seconds, total_);
  out_.flush();
}

}  // namespace fathom::app
