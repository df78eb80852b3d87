#pragma once
// Download progress for one file: a redrawn bar on stderr when stderr is a terminal, otherwise info log lines
// (the project's logging) at the start, every `log_interval` and at the end. Not thread-safe: one downloader.
#include <chrono>
#include <cstdint>
#include <string>

namespace fathom::hub {

enum class ProgressMode {
  kAuto,  // kBar when stderr is a terminal, else kLog
  kBar,
  kLog,
  kNone,
};

class DownloadProgress {
 public:
  // `total` bytes (0: unknown), of which `already` are on disk (a resumed download).
  DownloadProgress(std::string label, std::uint64_t total, std::uint64_t already, ProgressMode mode,
                   std::chrono::milliseconds log_interval = std::chrono::seconds(5));
  void add(std::uint64_t bytes);
  void restart();  // the server sent the whole file again: count from 0
  // Draws / logs the final state (`ok`: completed).
  void finish(bool ok);

 private:
  void report(bool final);

  std::string label_;
  std::uint64_t total_, done_;
  ProgressMode mode_;
  std::chrono::milliseconds interval_;
  std::chrono::steady_clock::time_point last_;
};

// "12.3 MiB"
std::string human_bytes(std::uint64_t bytes);

}  // namespace fathom::hub
