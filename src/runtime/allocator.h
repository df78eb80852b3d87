#pragma once
// Device memory: per-model accounting (MemoryAccount), the Allocator interface, an owning Buffer, and the
// CPU allocator (64-byte aligned). A CUDA allocator implements the same interface in backends/cuda/.
#include <cstddef>
#include <mutex>
#include <string>

#include "base/error.h"
#include "runtime/device.h"
#include "runtime/tensor.h"

namespace fathom {

// Bytes one model (or other owner) holds on one device, with an optional budget.
// Thread-safe: every method may be called from any thread.
class MemoryAccount {
 public:
  explicit MemoryAccount(std::string name = "", std::size_t budget = 0) : name_(std::move(name)), budget_(budget) {}
  MemoryAccount(const MemoryAccount&) = delete;
  MemoryAccount& operator=(const MemoryAccount&) = delete;

  // Charges `bytes`; fails with kOutOfMemory (naming the account, the request and the budget) when the
  // total would exceed a non-zero budget. Nothing is charged on failure.
  Status charge(std::size_t bytes);
  void release(std::size_t bytes);

  const std::string& name() const { return name_; }
  std::size_t in_use() const;
  std::size_t peak() const;
  std::size_t budget() const;  // 0 = unlimited
  void set_budget(std::size_t budget);

 private:
  mutable std::mutex mutex_;
  std::string name_;
  std::size_t budget_ = 0;
  std::size_t in_use_ = 0;
  std::size_t peak_ = 0;
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual Device device() const = 0;

  // Allocates `bytes` (0 is allowed and gives a unique non-null pointer), charged to `account` when
  // non-null. Over budget: kOutOfMemory naming the budget; device exhaustion: kOutOfMemory too.
  Result<void*> allocate(std::size_t bytes, MemoryAccount* account = nullptr);
  // Frees what allocate() returned (same `bytes` and `account`). nullptr is a no-op.
  void deallocate(void* ptr, std::size_t bytes, MemoryAccount* account = nullptr);

  // Synchronous copies between host memory and memory of this allocator's device.
  virtual Status copy_from_host(void* dst, const void* src, std::size_t bytes) = 0;
  virtual Status copy_to_host(void* dst, const void* src, std::size_t bytes) = 0;

 protected:
  // Device allocation without accounting; nullptr on failure.
  virtual void* raw_allocate(std::size_t bytes) = 0;
  virtual void raw_deallocate(void* ptr) = 0;
};

// Host memory, 64-byte aligned. Thread-safe.
class CpuAllocator final : public Allocator {
 public:
  static constexpr std::size_t kAlignment = 64;
  Device device() const override { return Device::cpu(); }
  Status copy_from_host(void* dst, const void* src, std::size_t bytes) override;
  Status copy_to_host(void* dst, const void* src, std::size_t bytes) override;

 protected:
  void* raw_allocate(std::size_t bytes) override;
  void raw_deallocate(void* ptr) override;
};

// The process-wide CPU allocator.
CpuAllocator& cpu_allocator();

// Allocators per device: the CPU allocator is always there; a device backend (CUDA) registers its own
// at start-up. allocator_for() returns nullptr for a device without one. Thread-safe.
void register_allocator(const Device& device, Allocator* allocator);
Allocator* allocator_for(const Device& device);

// Owning, move-only device memory from an Allocator, charged to an account while alive.
class Buffer {
 public:
  Buffer() = default;
  static Result<Buffer> allocate(Allocator& allocator, std::size_t bytes, MemoryAccount* account = nullptr);
  ~Buffer() { reset(); }
  Buffer(Buffer&& o) noexcept { *this = std::move(o); }
  Buffer& operator=(Buffer&& o) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void reset();
  void* data() const { return data_; }
  template <typename T>
  T* as() const { return static_cast<T*>(data_); }
  std::size_t size() const { return size_; }
  bool empty() const { return data_ == nullptr; }
  Allocator* allocator() const { return allocator_; }
  // A view of the start of the buffer; the shape's bytes must fit (else std::out_of_range).
  TensorView view(DType dtype, Shape shape) const;

 private:
  Allocator* allocator_ = nullptr;
  MemoryAccount* account_ = nullptr;
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace fathom
