#pragma once
// A paged (block) KV cache for a decoder: fixed-size blocks of positions, a block table per sequence, and a
// memory budget in bytes charged to the model's MemoryAccount.
//
// Memory: one device buffer of num_blocks() blocks for every layer. Layer l's key pool and value pool are
// each [num_blocks * block_size, kv_width] rows of the compute dtype (kv_width = kv_heads * head_dim); a
// block holds block_size consecutive positions of one sequence in every layer's pools (the same block index
// in all layers). bytes_per_block() = layers * 2 * block_size * kv_width * dtype size; the pool is
// floor(budget / bytes_per_block) blocks, allocated once when the cache is created (the budget is the cache's
// share of the model's memory; the charge is visible in the account).
//
// Sequences are small integer handles. A sequence owns the blocks of its block table; reserve() grows the
// table to cover a length, release() returns every block. Sequence position p lives in pool row
// slot(seq, p) = table[p / block_size] * block_size + p % block_size. length() is the number of positions
// holding keys/values (advanced by the network after each forward pass).
//
// Not thread-safe: owned and used by the one thread that runs the model.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/error.h"
#include "runtime/allocator.h"
#include "runtime/tensor.h"

namespace fathom::models::decoder {

struct KvCacheShape {
  int layers = 0;
  int kv_width = 0;       // kv_heads * head_dim
  int block_size = 16;    // positions per block
  DType dtype = DType::kF32;
};

class PagedKvCache {
 public:
  // Allocates floor(budget_bytes / bytes_per_block) blocks (at least one must fit, else kOutOfMemory naming
  // the budget and the block size) on `allocator`'s device, charged to `account` (which also enforces its own
  // budget). The memory is not cleared.
  static Result<PagedKvCache> create(Allocator& allocator, MemoryAccount* account, const KvCacheShape& shape,
                                     std::size_t budget_bytes);
  PagedKvCache() = default;
  PagedKvCache(PagedKvCache&&) = default;
  PagedKvCache& operator=(PagedKvCache&&) = default;

  const KvCacheShape& shape() const { return shape_; }
  int block_size() const { return shape_.block_size; }
  int num_blocks() const { return num_blocks_; }
  int free_blocks() const { return static_cast<int>(free_.size()); }
  std::size_t bytes_per_block() const;
  std::size_t bytes() const { return buffer_.size(); }
  // Blocks needed to hold `positions` positions.
  int blocks_for(int64_t positions) const;
  // Layer `layer`'s key (which = 0) or value (which = 1) pool: [num_blocks * block_size, kv_width].
  TensorView pool(int layer, int which) const;

  // A new empty sequence (no blocks yet).
  int add_sequence();
  // Grows `seq`'s block table to cover `positions` positions. kOutOfMemory (nothing changed) when the free
  // blocks do not suffice; kInvalidArgument for an unknown sequence.
  Status reserve(int seq, int64_t positions);
  // Returns every block of `seq` and forgets it (unknown handles are ignored).
  void release(int seq);
  bool valid(int seq) const;
  int64_t length(int seq) const;
  // Sets the positions holding keys/values (<= the reserved capacity).
  void set_length(int seq, int64_t length);
  int64_t capacity(int seq) const;  // positions covered by the block table
  const std::vector<int32_t>& block_table(int seq) const;
  int32_t slot(int seq, int64_t position) const;
  int live_sequences() const;

 private:
  struct Sequence {
    bool live = false;
    int64_t length = 0;
    std::vector<int32_t> blocks;
  };
  KvCacheShape shape_;
  int num_blocks_ = 0;
  Buffer buffer_;
  std::vector<int32_t> free_;  // free block indices (a stack: lowest indices handed out first)
  std::vector<Sequence> seqs_;
  std::vector<int> free_handles_;
};

}  // namespace fathom::models::decoder
