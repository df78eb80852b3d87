#pragma once
// Scratch memory that grows on demand. Ops take what they need for the duration of one call; contents
// do not survive the next get(). Not thread-safe: one per worker / ExecContext.
#include <cstddef>

#include "runtime/allocator.h"

namespace fathom {

class Workspace {
 public:
  Workspace(Allocator& allocator, MemoryAccount* account = nullptr) : allocator_(&allocator), account_(account) {}
  // At least `bytes` of scratch (64-byte aligned on CPU). Grows (charged to the account) when needed;
  // kOutOfMemory when the budget cannot hold it.
  Result<void*> get(std::size_t bytes);
  std::size_t capacity() const { return buffer_.size(); }
  void release() { buffer_.reset(); }

 private:
  Allocator* allocator_;
  MemoryAccount* account_;
  Buffer buffer_;
};

}  // namespace fathom
