#include "backends/cuda/context.h"

#include <map>
#include <memory>
#include <mutex>

namespace fathom::cuda {
namespace {
std::mutex registry_mutex;
}  // namespace

CudaAllocator& device_allocator(int device) {
  static std::map<int, std::unique_ptr<CudaAllocator>>* allocators = new std::map<int, std::unique_ptr<CudaAllocator>>();
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto& a = (*allocators)[device];
  if (!a) a = std::make_unique<CudaAllocator>(device);
  return *a;
}

BlasLt& device_blas(int device) {
  // Never destroyed: handles outliving the CUDA context at exit would fail in their destructors.
  static std::map<int, BlasLt*>* handles = new std::map<int, BlasLt*>();
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto& b = (*handles)[device];
  if (!b) b = new BlasLt(device);
  return *b;
}

CudaExecContext::CudaExecContext(int device, std::size_t budget)
    : stream_(device),
      account_("cuda:" + std::to_string(device) + "-context", budget),
      workspace_(device_allocator(device), &account_) {
  ctx_.device = Device::cuda(device);
  ctx_.stream = stream_.get();
  ctx_.allocator = &device_allocator(device);
  ctx_.account = &account_;
  ctx_.workspace = &workspace_;
}

}  // namespace fathom::cuda
