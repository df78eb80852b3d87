#include "runtime/allocator.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

namespace fathom {
namespace {
std::string mib(std::size_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}
}  // namespace

Status MemoryAccount::charge(std::size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (budget_ != 0 && in_use_ + bytes > budget_) {
    return make_error(ErrorCode::kOutOfMemory,
                      "memory budget exceeded" + (name_.empty() ? std::string() : " for '" + name_ + "'") +
                          ": allocating " + mib(bytes) + " with " + mib(in_use_) + " in use would exceed the budget of " +
                          mib(budget_) + " (" + std::to_string(budget_) + " bytes)");
  }
  in_use_ += bytes;
  if (in_use_ > peak_) peak_ = in_use_;
  return Status::Ok();
}

void MemoryAccount::release(std::size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  in_use_ = bytes > in_use_ ? 0 : in_use_ - bytes;
}

std::size_t MemoryAccount::in_use() const { std::lock_guard<std::mutex> l(mutex_); return in_use_; }
std::size_t MemoryAccount::peak() const { std::lock_guard<std::mutex> l(mutex_); return peak_; }
std::size_t MemoryAccount::budget() const { std::lock_guard<std::mutex> l(mutex_); return budget_; }
void MemoryAccount::set_budget(std::size_t budget) { std::lock_guard<std::mutex> l(mutex_); budget_ = budget; }

Result<void*> Allocator::allocate(std::size_t bytes, MemoryAccount* account) {
  if (account) FATHOM_TRY(account->charge(bytes));
  void* p = raw_allocate(bytes);
  if (!p) {
    if (account) account->release(bytes);
    return make_error(ErrorCode::kOutOfMemory,
                      "out of memory on " + device().to_string() + " allocating " + mib(bytes));
  }
  return p;
}

void Allocator::deallocate(void* ptr, std::size_t bytes, MemoryAccount* account) {
  if (!ptr) return;
  raw_deallocate(ptr);
  if (account) account->release(bytes);
}

void* CpuAllocator::raw_allocate(std::size_t bytes) {
  std::size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  return std::aligned_alloc(kAlignment, rounded);
}

void CpuAllocator::raw_deallocate(void* ptr) { std::free(ptr); }

Status CpuAllocator::copy_from_host(void* dst, const void* src, std::size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
  return Status::Ok();
}

Status CpuAllocator::copy_to_host(void* dst, const void* src, std::size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
  return Status::Ok();
}

CpuAllocator& cpu_allocator() {
  static CpuAllocator allocator;
  return allocator;
}

namespace {
std::mutex g_registry_mutex;
std::vector<std::pair<Device, Allocator*>>& registered() {
  static std::vector<std::pair<Device, Allocator*>> v;
  return v;
}
}  // namespace

void register_allocator(const Device& device, Allocator* allocator) {
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  for (auto& [d, a] : registered())
    if (d == device) {
      a = allocator;
      return;
    }
  registered().emplace_back(device, allocator);
}

Allocator* allocator_for(const Device& device) {
  if (device.kind == DeviceKind::kCpu) return &cpu_allocator();
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  for (auto& [d, a] : registered())
    if (d == device) return a;
  return nullptr;
}

Result<Buffer> Buffer::allocate(Allocator& allocator, std::size_t bytes, MemoryAccount* account) {
  FATHOM_ASSIGN_OR_RETURN(void* p, allocator.allocate(bytes, account));
  Buffer b;
  b.allocator_ = &allocator;
  b.account_ = account;
  b.data_ = p;
  b.size_ = bytes;
  return b;
}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    reset();
    allocator_ = o.allocator_;
    account_ = o.account_;
    data_ = o.data_;
    size_ = o.size_;
    o.allocator_ = nullptr;
    o.account_ = nullptr;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

void Buffer::reset() {
  if (data_ && allocator_) allocator_->deallocate(data_, size_, account_);
  data_ = nullptr;
  size_ = 0;
  allocator_ = nullptr;
  account_ = nullptr;
}

TensorView Buffer::view(DType dtype, Shape shape) const {
  std::size_t need = static_cast<std::size_t>(shape.numel()) * dtype_size(dtype);
  if (need > size_) throw std::out_of_range("Buffer::view: " + shape.to_string() + " does not fit the buffer");
  return TensorView(data_, dtype, shape, allocator_ ? allocator_->device() : Device::cpu());
}

}  // namespace fathom
