#include "hub/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "base/log.h"

namespace fathom::hub {

std::string human_bytes(std::uint64_t bytes) {
  char buf[64];
  if (bytes >= (1ull << 30)) std::snprintf(buf, sizeof(buf), "%.1f GiB", static_cast<double>(bytes) / (1ull << 30));
  else if (bytes >= (1ull << 20)) std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1ull << 20));
  else if (bytes >= 1024) std::snprintf(buf, sizeof(buf), "%.1f KiB", static_cast<double>(bytes) / 1024);
  else std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(bytes));
  return buf;
}

DownloadProgress::DownloadProgress(std::string label, std::uint64_t total, std::uint64_t already, ProgressMode mode,
                                   std::chrono::milliseconds log_interval)
    : label_(std::move(label)), total_(total), done_(already), mode_(mode), interval_(log_interval),
      last_(std::chrono::steady_clock::now()) {
  if (mode_ == ProgressMode::kAuto) mode_ = isatty(STDERR_FILENO) ? ProgressMode::kBar : ProgressMode::kLog;
  if (mode_ == ProgressMode::kBar) interval_ = std::chrono::milliseconds(100);
  if (mode_ == ProgressMode::kLog) {
    FATHOM_LOG(kInfo) << "downloading " << label_ << (total_ ? " (" + human_bytes(total_) + ")" : std::string())
                      << (already ? ", resuming after " + human_bytes(already) : std::string());
  }
  if (mode_ == ProgressMode::kBar) report(false);
}

void DownloadProgress::add(std::uint64_t bytes) {
  done_ += bytes;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_ >= interval_) {
    last_ = now;
    report(false);
  }
}

void DownloadProgress::restart() { done_ = 0; }

void DownloadProgress::finish(bool ok) {
  if (mode_ == ProgressMode::kBar) {
    report(true);
    std::cerr << (ok ? "\n" : "  failed\n") << std::flush;
  } else if (mode_ == ProgressMode::kLog && ok) {
    FATHOM_LOG(kInfo) << "downloaded " << label_ << " (" << human_bytes(done_) << ")";
  }
}

void DownloadProgress::report(bool final) {
  const double fraction = total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 0.0;
  const int percent = static_cast<int>(std::min(1.0, fraction) * 100.0);
  if (mode_ == ProgressMode::kBar) {
    constexpr int kWidth = 30;
    const int filled = total_ ? static_cast<int>(std::min(1.0, fraction) * kWidth) : 0;
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.append(static_cast<std::size_t>(kWidth - filled), '.');
    std::cerr << "\r" << label_ << "  [" << bar << "] " << (total_ ? std::to_string(percent) + "%" : std::string("?"))
              << "  " << human_bytes(done_) << (total_ ? " / " + human_bytes(total_) : std::string()) << "   "
              << std::flush;
  } else if (mode_ == ProgressMode::kLog && !final) {
    FATHOM_LOG(kInfo) << "downloading " << label_ << ": " << human_bytes(done_)
                      << (total_ ? " of " + human_bytes(total_) + " (" + std::to_string(percent) + "%)" : std::string());
  }
}

}  // namespace fathom::hub
