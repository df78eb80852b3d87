#pragma once
// Where tensors live and ops run.
#include <optional>
#include <string>
#include <string_view>

namespace fathom {

enum class DeviceKind { kCpu, kCuda };

struct Device {
  DeviceKind kind = DeviceKind::kCpu;
  int index = 0;  // CUDA ordinal; 0 for CPU
  std::string to_string() const;  // "cpu" or "cuda:0"
  bool operator==(const Device&) const = default;
  static Device cpu() { return Device{}; }
  static Device cuda(int index = 0) { return Device{DeviceKind::kCuda, index}; }
};

const char* device_kind_name(DeviceKind kind);  // "cpu", "cuda"
// Parses "cpu", "cuda", "cuda:N" (also "gpu", "gpu:N"); nullopt otherwise.
std::optional<Device> parse_device(std::string_view text);

}  // namespace fathom
