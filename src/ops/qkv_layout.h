#pragma once
// The row layout of a fused grouped-query q | k | v projection: each token's row holds q_heads query heads,
// then kv_heads key heads, then kv_heads value heads, each head_dim wide (q_heads a multiple of kv_heads).
#include <cstdint>

namespace fathom::ops {

struct QkvLayout {
  int q_heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
  int64_t q_width() const { return static_cast<int64_t>(q_heads) * head_dim; }
  int64_t kv_width() const { return static_cast<int64_t>(kv_heads) * head_dim; }
  int64_t row_width() const { return q_width() + 2 * kv_width(); }
  bool valid() const { return q_heads > 0 && kv_heads > 0 && head_dim > 0 && q_heads % kv_heads == 0; }
};

}  // namespace fathom::ops
