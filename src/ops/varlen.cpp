#include "ops/varlen.h"

#include <algorithm>
#include <string>

namespace fathom::ops {

VarlenBatch VarlenBatch::from_lengths(const std::vector<int>& lengths) {
  VarlenBatch b;
  b.cu_seqlens.reserve(lengths.size() + 1);
  b.cu_seqlens.push_back(0);
  for (int len : lengths) {
    b.cu_seqlens.push_back(b.cu_seqlens.back() + len);
    b.max_seqlen = std::max(b.max_seqlen, len);
  }
  return b;
}

Status VarlenBatch::validate() const {
  if (cu_seqlens.empty() || cu_seqlens[0] != 0)
    return make_error(ErrorCode::kInvalidArgument, "varlen batch: cu_seqlens must start with 0");
  int longest = 0;
  for (std::size_t i = 1; i < cu_seqlens.size(); ++i) {
    const int len = cu_seqlens[i] - cu_seqlens[i - 1];
    if (len < 0)
      return make_error(ErrorCode::kInvalidArgument,
                        "varlen batch: cu_seqlens decreases at entry " + std::to_string(i));
    longest = std::max(longest, len);
  }
  if (longest > max_seqlen)
    return make_error(ErrorCode::kInvalidArgument, "varlen batch: a sequence of " + std::to_string(longest) +
                                                       " tokens exceeds max_seqlen " + std::to_string(max_seqlen));
  return Status::Ok();
}

}  // namespace fathom::ops
