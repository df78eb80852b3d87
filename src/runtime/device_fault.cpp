#include "runtime/device_fault.h"

#include <map>
#include <mutex>

namespace fathom {
namespace {

std::mutex& faults_mutex() {
  static std::mutex mu;
  return mu;
}
std::map<std::string, std::string>& faults() {
  static std::map<std::string, std::string> m;
  return m;
}

}  // namespace

void report_device_fault(const std::string& device, const std::string& error) {
  std::lock_guard lock(faults_mutex());
  faults().emplace(device, error);  // keeps the first
}

std::optional<std::string> device_fault(const std::string& device) {
  std::lock_guard lock(faults_mutex());
  auto it = faults().find(device);
  if (it == faults().end()) return std::nullopt;
  return it->second;
}

}  // namespace fathom
