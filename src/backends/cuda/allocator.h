#pragma once
// Device memory for one model (or one workspace owner) with a byte budget.
//
// CachingAllocator hands out device blocks rounded to a size class (512-byte multiples below 1 MiB,
// then steps of 1/8 of the next power of two) and keeps freed blocks in per-class free lists, so the
// steady state performs no cudaMalloc/cudaFree. `reserve()` may pre-populate blocks at model load.
// reserved_bytes() (all blocks obtained from the driver, in use or cached) never exceeds budget_bytes:
// an allocation that would go over first releases cached blocks, then throws
// fathom::Exception(kOutOfMemory) naming the budget. Thread-safe (one mutex); pointers are 256-byte
// aligned. Freed memory may be reused immediately: callers free only after the stream work that used
// the block is ordered before the next user (the device worker runs one stream per device).
//
// CudaAllocator: the runtime Allocator for one CUDA device, backed by a CachingAllocator (per-model
// budgets are the MemoryAccount passed to allocate(); the pool's own cap bounds the whole device).
//
// PinnedBuffer: page-locked host memory for asynchronous host<->device staging; grows only when asked
// for more than its capacity (call ensure() outside the hot path).
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/allocator.h"

namespace fathom::cuda {

class CachingAllocator {
 public:
  // `budget_bytes` 0 means unlimited. `name` appears in error messages (e.g. the model's name).
  CachingAllocator(int device, std::size_t budget_bytes, std::string name);
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  void* allocate(std::size_t bytes);
  void deallocate(void* ptr);
  // Returns all cached (free) blocks to the driver. Synchronizes the device first.
  void release_cached();

  static std::size_t size_class(std::size_t bytes);

  std::size_t budget_bytes() const { return budget_; }
  std::size_t reserved_bytes() const;  // obtained from the driver (in use + cached)
  std::size_t in_use_bytes() const;
  std::size_t driver_allocations() const;  // number of cudaMalloc calls so far
  int device() const { return device_; }

 private:
  void release_cached_locked();

  int device_;
  std::size_t budget_;
  std::string name_;
  mutable std::mutex mu_;
  std::multimap<std::size_t, void*> free_;             // class size -> block
  std::unordered_map<void*, std::size_t> in_use_;      // block -> class size
  std::size_t reserved_ = 0;
  std::size_t in_use_bytes_ = 0;
  std::size_t driver_allocs_ = 0;
};

// RAII device buffer from a CachingAllocator.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(CachingAllocator& alloc, std::size_t bytes) : alloc_(&alloc), ptr_(alloc.allocate(bytes)), bytes_(bytes) {}
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : alloc_(o.alloc_), ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) { reset(); alloc_ = o.alloc_; ptr_ = o.ptr_; bytes_ = o.bytes_; o.ptr_ = nullptr; }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void reset() { if (ptr_) alloc_->deallocate(ptr_); ptr_ = nullptr; bytes_ = 0; }
  void* get() const { return ptr_; }
  template <typename T> T* as() const { return static_cast<T*>(ptr_); }
  std::size_t bytes() const { return bytes_; }

 private:
  CachingAllocator* alloc_ = nullptr;
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

class CudaAllocator final : public Allocator {
 public:
  // `device_cap_bytes` 0: unlimited (up to the device's memory).
  explicit CudaAllocator(int device, std::size_t device_cap_bytes = 0);
  Device device() const override { return Device::cuda(device_); }
  Status copy_from_host(void* dst, const void* src, std::size_t bytes) override;
  Status copy_to_host(void* dst, const void* src, std::size_t bytes) override;
  CachingAllocator& pool() { return pool_; }

 protected:
  void* raw_allocate(std::size_t bytes) override;
  void raw_deallocate(void* ptr) override;

 private:
  int device_;
  CachingAllocator pool_;
};

class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(std::size_t bytes) { ensure(bytes); }
  ~PinnedBuffer();
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  // Grows to at least `bytes` (contents are not preserved when it grows).
  void ensure(std::size_t bytes);
  void* get() const { return ptr_; }
  template <typename T> T* as() const { return static_cast<T*>(ptr_); }
  std::size_t capacity() const { return capacity_; }

 private:
  void* ptr_ = nullptr;
  std::size_t capacity_ = 0;
};

}  // namespace fathom::cuda
