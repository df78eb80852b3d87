#include "runtime/device.h"

#include <charconv>

namespace fathom {

const char* device_kind_name(DeviceKind kind) { return kind == DeviceKind::kCuda ? "cuda" : "cpu"; }

std::string Device::to_string() const {
  if (kind == DeviceKind::kCpu) return "cpu";
  return "cuda:" + std::to_string(index);
}

std::optional<Device> parse_device(std::string_view text) {
  if (text == "cpu") return Device::cpu();
  for (std::string_view prefix : {"cuda", "gpu"}) {
    if (text.substr(0, prefix.size()) != prefix) continue;
    std::string_view rest = text.substr(prefix.size());
    if (rest.empty()) return Device::cuda(0);
    if (rest[0] != ':' || rest.size() < 2) return std::nullopt;
    int index = 0;
    auto [ptr, ec] = std::from_chars(rest.data() + 1, rest.data() + rest.size(), index);
    if (ec != std::errc() || ptr != rest.data() + rest.size() || index < 0) return std::nullopt;
    return Device::cuda(index);
  }
  return std::nullopt;
}

}  // namespace fathom
