#include "backends/cuda/allocator.h"

#include <cuda_runtime_api.h>

#include "backends/cuda/check.h"

namespace fathom::cuda {

namespace {
std::string mib(std::size_t b) { return std::to_string(b / (1024 * 1024)) + " MiB"; }
}  // namespace

CachingAllocator::CachingAllocator(int device, std::size_t budget_bytes, std::string name)
    : device_(device), budget_(budget_bytes), name_(std::move(name)) {}

CachingAllocator::~CachingAllocator() {
  std::lock_guard<std::mutex> lock(mu_);
  int prev = 0;
  cudaGetDevice(&prev);
  cudaSetDevice(device_);
  for (auto& [size, p] : free_) cudaFree(p);
  for (auto& [p, size] : in_use_) cudaFree(p);  // owner leaked buffers: return them anyway
  cudaSetDevice(prev);
}

std::size_t CachingAllocator::size_class(std::size_t bytes) {
  if (bytes == 0) bytes = 1;
  constexpr std::size_t kSmall = 1 << 20;
  if (bytes <= kSmall) return (bytes + 511) / 512 * 512;
  std::size_t p = kSmall;
  while (p < bytes) p <<= 1;
  std::size_t step = p / 8;
  return (bytes + step - 1) / step * step;
}

void* CachingAllocator::allocate(std::size_t bytes) {
  const std::size_t cls = size_class(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = free_.find(cls);
  if (it != free_.end()) {
    void* p = it->second;
    free_.erase(it);
    in_use_[p] = cls;
    in_use_bytes_ += cls;
    return p;
  }
  if (budget_ != 0 && reserved_ + cls > budget_) {
    release_cached_locked();
    if (reserved_ + cls > budget_)
      throw Exception(ErrorCode::kOutOfMemory, "device memory budget of '" + name_ + "' exceeded: " + mib(budget_) +
                                                   " budget, " + mib(in_use_bytes_) + " in use, " + mib(cls) +
                                                   " requested");
  }
  int prev = 0;
  FATHOM_CUDA_CHECK(cudaGetDevice(&prev));
  if (prev != device_) FATHOM_CUDA_CHECK(cudaSetDevice(device_));
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, cls);
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    release_cached_locked();
    err = cudaMalloc(&p, cls);
  }
  if (prev != device_) cudaSetDevice(prev);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    throw Exception(err == cudaErrorMemoryAllocation ? ErrorCode::kOutOfMemory : ErrorCode::kInternal,
                    "cudaMalloc of " + mib(cls) + " for '" + name_ + "' failed: " + cudaGetErrorString(err));
  }
  ++driver_allocs_;
  reserved_ += cls;
  in_use_[p] = cls;
  in_use_bytes_ += cls;
  return p;
}

void CachingAllocator::deallocate(void* ptr) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = in_use_.find(ptr);
  if (it == in_use_.end())
    throw Exception(ErrorCode::kInternal, "CachingAllocator '" + name_ + "': free of an unknown pointer");
  free_.emplace(it->second, ptr);
  in_use_bytes_ -= it->second;
  in_use_.erase(it);
}

void CachingAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mu_);
  release_cached_locked();
}

void CachingAllocator::release_cached_locked() {
  if (free_.empty()) return;
  int prev = 0;
  cudaGetDevice(&prev);
  cudaSetDevice(device_);
  cudaDeviceSynchronize();
  for (auto& [size, p] : free_) {
    cudaFree(p);
    reserved_ -= size;
  }
  free_.clear();
  cudaSetDevice(prev);
}

std::size_t CachingAllocator::reserved_bytes() const { std::lock_guard<std::mutex> l(mu_); return reserved_; }
std::size_t CachingAllocator::in_use_bytes() const { std::lock_guard<std::mutex> l(mu_); return in_use_bytes_; }
std::size_t CachingAllocator::driver_allocations() const { std::lock_guard<std::mutex> l(mu_); return driver_allocs_; }

CudaAllocator::CudaAllocator(int device, std::size_t cap)
    : device_(device), pool_(device, cap, "cuda:" + std::to_string(device)) {}

void* CudaAllocator::raw_allocate(std::size_t bytes) {
  try {
    return pool_.allocate(bytes);
  } catch (const Exception&) {
    return nullptr;
  }
}

void CudaAllocator::raw_deallocate(void* ptr) { pool_.deallocate(ptr); }

Status CudaAllocator::copy_from_host(void* dst, const void* src, std::size_t bytes) {
  cudaError_t e = cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return make_error(ErrorCode::kInternal, std::string("copy to cuda:") + std::to_string(device_) +
                                                " failed: " + cudaGetErrorString(e));
  }
  return Status::Ok();
}

Status CudaAllocator::copy_to_host(void* dst, const void* src, std::size_t bytes) {
  cudaError_t e = cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return make_error(ErrorCode::kInternal, std::string("copy from cuda:") + std::to_string(device_) +
                                                " failed: " + cudaGetErrorString(e));
  }
  return Status::Ok();
}

PinnedBuffer::~PinnedBuffer() {
  if (ptr_) cudaFreeHost(ptr_);
}

void PinnedBuffer::ensure(std::size_t bytes) {
  if (bytes <= capacity_) return;
  if (ptr_) FATHOM_CUDA_CHECK(cudaFreeHost(ptr_));
  ptr_ = nullptr;
  capacity_ = 0;
  FATHOM_CUDA_CHECK(cudaMallocHost(&ptr_, bytes));
  capacity_ = bytes;
}

}  // namespace fathom::cuda
