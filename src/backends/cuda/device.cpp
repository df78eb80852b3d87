#include "backends/cuda/device.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "backends/cuda/check.h"
#include "backends/cuda/sm_partition.h"

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

int device_sm_count(int device) {
  int n = 0;
  FATHOM_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
  return n;
}

Stream::Stream(int device, int priority_levels, int max_sms) : device_(device) {
  set_device(device);
  if (priority_levels > 0) {
    int least = 0, greatest = 0;
    FATHOM_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
    priority_ = std::max(greatest, least - priority_levels);  // numerically lower = higher priority
  }
  if (max_sms > 0) {
    SmPartition p = create_sm_partition(device, max_sms, priority_);
    stream_ = p.stream;
    green_context_ = p.green_context;
    sms_ = p.sms;
    return;
  }
  FATHOM_CUDA_CHECK(cudaStreamCreateWithPriority(&stream_, cudaStreamNonBlocking, priority_));
}

void Stream::release() {
  SmPartition p{stream_, green_context_, sms_};
  if (green_context_) destroy_sm_partition(p);
  else if (stream_) cudaStreamDestroy(stream_);
  stream_ = nullptr;
  green_context_ = nullptr;
}

Stream::~Stream() { release(); }

Stream::Stream(Stream&& other) noexcept
    : stream_(std::exchange(other.stream_, nullptr)),
      green_context_(std::exchange(other.green_context_, nullptr)),
      device_(other.device_),
      priority_(other.priority_),
      sms_(other.sms_) {}

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    release();
    stream_ = std::exchange(other.stream_, nullptr);
    green_context_ = std::exchange(other.green_context_, nullptr);
    device_ = other.device_;
    priority_ = other.priority_;
    sms_ = other.sms_;
  }
  return *this;
}

void Stream::synchronize() const { FATHOM_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

}  // namespace fathom::cuda
