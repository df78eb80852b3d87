#pragma once
// CUDA devices and streams.
//
// Stream: an owning, move-only wrapper of a non-blocking cudaStream_t created on a given device.
// `priority_levels` > 0 asks for a stream that many levels above the default (CUDA's default is the lowest
// priority); it is clamped to cudaDeviceGetStreamPriorityRange, so 0 (the default) and devices without
// priorities give an ordinary stream. The hardware scheduler starts pending blocks of a higher-priority
// stream before those of lower ones (running blocks are not preempted). `max_sms` > 0 puts the stream in an
// SM partition of that many SMs (sm_partition.h; rounded up to the device's granularity): its kernels run
// on those SMs only, leaving the others to the device's other streams.
// Not thread-safe: one device worker thread owns a stream.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>

namespace fathom::cuda {

// Number of visible CUDA devices; 0 when there is no driver or no device (never throws).
int device_count();
// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)". Throws fathom::Exception on a bad ordinal.
std::string device_description(int device);
// Makes `device` current for the calling thread. Throws on failure.
void set_device(int device);
// The device's SM count. Throws fathom::Exception on a bad ordinal.
int device_sm_count(int device);

class Stream {
 public:
  explicit Stream(int device = 0, int priority_levels = 0, int max_sms = 0);
  ~Stream();
  Stream(Stream&& other) noexcept;
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  cudaStream_t get() const { return stream_; }
  int device() const { return device_; }
  int priority() const { return priority_; }  // the CUDA priority it got (0 = default; lower = higher)
  int sm_limit() const { return sms_; }         // SMs of its partition; 0 = unlimited (every SM)
  // Blocks the host until all work queued on the stream finished. Throws on a device error.
  void synchronize() const;

 private:
  void release();

  cudaStream_t stream_ = nullptr;
  void* green_context_ = nullptr;  // the SM partition's green context, when max_sms > 0
  int device_ = 0;
  int priority_ = 0;
  int sms_ = 0;
};

}  // namespace fathom::cuda
