#include "runtime/workspace.h"

#include <algorithm>

namespace fathom {

Result<void*> Workspace::get(std::size_t bytes) {
  if (buffer_.empty() || buffer_.size() < bytes) {
    // Grow geometrically so a slowly growing demand does not reallocate every call.
    std::size_t want = std::max(bytes, buffer_.size() + buffer_.size() / 2);
    buffer_.reset();
    auto b = Buffer::allocate(*allocator_, want, account_);
    if (!b.ok()) {
      if (want == bytes) return b.error();
      FATHOM_ASSIGN_OR_RETURN(buffer_, Buffer::allocate(*allocator_, bytes, account_));
    } else {
      buffer_ = std::move(b).value();
    }
  }
  return buffer_.data();
}

}  // namespace fathom
