#pragma once
// Logging to stderr: one line per message, "2024-05-01T12:00:00.123Z I message".
//
// Usage: FATHOM_LOG(kInfo) << "loaded " << name;   (the stream is only evaluated when the level is on)
// Thread-safety: every function may be called from any thread; lines never interleave.
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

namespace fathom {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

void set_log_level(LogLevel level);
LogLevel log_level();
// "debug", "info", "warn"/"warning", "error", "off" (case-insensitive).
std::optional<LogLevel> parse_log_level(std::string_view name);
inline bool log_enabled(LogLevel level) { return level >= log_level() && level != LogLevel::kOff; }
// Writes one line (timestamp, level letter, message) to stderr when `level` is enabled.
void log_message(LogLevel level, std::string_view message);

// Collects one line and writes it on destruction.
class LogLine {
 public:
  explicit LogLine(LogLevel level) : level_(level) {}
  ~LogLine() { log_message(level_, stream_.str()); }
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;
  std::ostringstream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

}  // namespace fathom

#define FATHOM_LOG(level)                                   \
  if (!::fathom::log_enabled(::fathom::LogLevel::level)) {  \
  } else                                                    \
    ::fathom::LogLine(::fathom::LogLevel::level).stream()
