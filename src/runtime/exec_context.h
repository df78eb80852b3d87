#pragma once
// The explicit context every op receives: where to run, on which stream, which allocator and account to
// charge, and the scratch workspace. No op keeps thread-local or global device state.
#include <memory>

#include "runtime/allocator.h"
#include "runtime/device.h"
#include "runtime/workspace.h"

namespace fathom {

struct ExecContext {
  Device device;                      // where ops run; tensors passed to ops must live here
  void* stream = nullptr;             // cudaStream_t on CUDA; unused on CPU
  Allocator* allocator = nullptr;     // for op-internal allocations (rare; prefer the workspace)
  MemoryAccount* account = nullptr;   // charged for those allocations
  Workspace* workspace = nullptr;     // op scratch; ops that need scratch fail cleanly without one
};

// A self-contained CPU context (tests, benchmarks, tools): owns its account and workspace.
class CpuExecContext {
 public:
  explicit CpuExecContext(std::size_t budget = 0)
      : account_("cpu-context", budget), workspace_(cpu_allocator(), &account_) {
    ctx_.device = Device::cpu();
    ctx_.allocator = &cpu_allocator();
    ctx_.account = &account_;
    ctx_.workspace = &workspace_;
  }
  ExecContext& ctx() { return ctx_; }
  MemoryAccount& account() { return account_; }

 private:
  MemoryAccount account_;
  Workspace workspace_;
  ExecContext ctx_;
};

}  // namespace fathom
