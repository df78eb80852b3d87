#pragma once
// Sticky device faults: errors after which a device cannot run anything more in this process (CUDA: an
// illegal address, a launch failure, a device-side assert, ... leave the context unusable until the process
// exits). Backends report them here; the engine's device workers check after every step and stop serving
// the device's models (503 naming the model, the device and the error), and /health reports them.
//
// Thread-safety: both functions may be called from any thread. The first fault reported for a device wins.
#include <optional>
#include <string>

namespace fathom {

// `device` as Device::to_string() writes it ("cpu", "cuda:0").
void report_device_fault(const std::string& device, const std::string& error);
std::optional<std::string> device_fault(const std::string& device);

}  // namespace fathom
