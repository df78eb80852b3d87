#include "backends/cuda/device.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "backends/cuda/check.h"

namespace fathom::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

std::string device_description(int device) {
  cudaDeviceProp p{};
  FATHOM_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s (sm_%d%d, %d SMs, %.1f GiB)", p.name, p.major, p.minor, p.multiProcessorCount,
                static_cast<double>(p.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

void set_device(int device) { FATHOM_CUDA_CHECK(cudaSetDevice(device)); }

Stream::Stream(int device, int priority_levels) : device_(device) {
  set_device(device);
  if (priority_levels > 0) {
    int least = 0, greatest = 0;
    FATHOM_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
    priority_ = std::max(greatest, least - priority_levels);  // numerically lower = higher priority
  }
  FATHOM_CUDA_CHECK(cudaStreamCreateWithPriority(&stream_, cudaStreamNonBlocking, priority_));
}

Stream::~Stream() {
  if (stream_) cudaStreamDestroy(stream_);
}

Stream::Stream(Stream&& other) noexcept
    : stream_(std::exchange(other.stream_, nullptr)), device_(other.device_), priority_(other.priority_) {}

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    if (stream_) cudaStreamDestroy(stream_);
    stream_ = std::exchange(other.stream_, nullptr);
    device_ = other.device_;
    priority_ = other.priority_;
  }
  return *this;
}

void Stream::synchronize() const { FATHOM_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

}  // namespace fathom::cuda
