#pragma once
// Per-device CUDA resources shared by every model on a device, and a self-contained ExecContext.
//
// device_allocator(d) / device_blas(d): created on first use, live until process exit; thread-safe
// creation. The allocator is the runtime Allocator for cuda:d (per-model budgets are MemoryAccounts);
// the BlasLt handle serialises its own calls.
//
// CudaExecContext: owns a stream, an account (optional budget) and a workspace on cuda:d; ctx() is the
// ExecContext ops take (device, stream, allocator, account, workspace). One per device worker / test.
#include <cstddef>

#include "backends/cuda/allocator.h"
#include "backends/cuda/blas.h"
#include "backends/cuda/device.h"
#include "runtime/exec_context.h"

namespace fathom::cuda {

CudaAllocator& device_allocator(int device);
BlasLt& device_blas(int device);

class CudaExecContext {
 public:
  explicit CudaExecContext(int device = 0, std::size_t budget = 0);
  ExecContext& ctx() { return ctx_; }
  MemoryAccount& account() { return account_; }
  cudaStream_t stream() const { return stream_.get(); }
  void synchronize() const { stream_.synchronize(); }

 private:
  Stream stream_;
  MemoryAccount account_;
  Workspace workspace_;
  ExecContext ctx_;
};

}  // namespace fathom::cuda
