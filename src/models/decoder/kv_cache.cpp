#include "models/decoder/kv_cache.h"

#include <algorithm>
#include <string>

namespace fathom::models::decoder {

std::size_t PagedKvCache::bytes_per_block() const {
  return static_cast<std::size_t>(shape_.layers) * 2 * static_cast<std::size_t>(shape_.block_size) *
         static_cast<std::size_t>(shape_.kv_width) * dtype_size(shape_.dtype);
}

Result<PagedKvCache> PagedKvCache::create(Allocator& allocator, MemoryAccount* account, const KvCacheShape& shape,
                                          std::size_t budget_bytes) {
  if (shape.layers <= 0 || shape.kv_width <= 0 || shape.block_size <= 0)
    return make_error(ErrorCode::kInvalidArgument, "PagedKvCache: layers, kv_width and block_size must be positive");
  PagedKvCache c;
  c.shape_ = shape;
  const std::size_t per_block = c.bytes_per_block();
  const std::size_t blocks = budget_bytes / per_block;
  if (blocks == 0)
    return make_error(ErrorCode::kOutOfMemory, "KV cache budget of " + std::to_string(budget_bytes) +
                                                   " bytes holds no block of " + std::to_string(per_block) +
                                                   " bytes (" + std::to_string(shape.block_size) + " positions)");
  if (blocks * static_cast<std::size_t>(shape.block_size) > static_cast<std::size_t>(INT32_MAX))
    return make_error(ErrorCode::kInvalidArgument, "KV cache budget of " + std::to_string(budget_bytes) +
                                                       " bytes gives more pool rows than int32 slots address");
  c.num_blocks_ = static_cast<int>(blocks);
  FATHOM_ASSIGN_OR_RETURN(c.buffer_, Buffer::allocate(allocator, blocks * per_block, account));
  c.free_.resize(blocks);
  for (std::size_t i = 0; i < blocks; ++i) c.free_[i] = static_cast<int32_t>(blocks - 1 - i);
  return c;
}

int PagedKvCache::blocks_for(int64_t positions) const {
  return static_cast<int>((positions + shape_.block_size - 1) / shape_.block_size);
}

TensorView PagedKvCache::pool(int layer, int which) const {
  const int64_t rows = static_cast<int64_t>(num_blocks_) * shape_.block_size;
  const std::size_t pool_bytes = static_cast<std::size_t>(rows) * shape_.kv_width * dtype_size(shape_.dtype);
  auto* base = static_cast<unsigned char*>(buffer_.data()) + (static_cast<std::size_t>(layer) * 2 + which) * pool_bytes;
  return TensorView(base, shape_.dtype, Shape{rows, shape_.kv_width}, buffer_.allocator()->device());
}

int PagedKvCache::add_sequence() {
  int h;
  if (!free_handles_.empty()) {
    h = free_handles_.back();
    free_handles_.pop_back();
  } else {
    h = static_cast<int>(seqs_.size());
    seqs_.emplace_back();
  }
  seqs_[static_cast<std::size_t>(h)] = Sequence{true, 0, {}};
  return h;
}

bool PagedKvCache::valid(int seq) const {
  return seq >= 0 && seq < static_cast<int>(seqs_.size()) && seqs_[static_cast<std::size_t>(seq)].live;
}

Status PagedKvCache::reserve(int seq, int64_t positions) {
  if (!valid(seq)) return make_error(ErrorCode::kInvalidArgument, "KV cache: unknown sequence " + std::to_string(seq));
  Sequence& s = seqs_[static_cast<std::size_t>(seq)];
  const int need = blocks_for(positions) - static_cast<int>(s.blocks.size());
  if (need <= 0) return Status::Ok();
  if (need > free_blocks())
    return make_error(ErrorCode::kOutOfMemory, "KV cache full: " + std::to_string(positions) + " positions need " +
                                                   std::to_string(need) + " more blocks of " +
                                                   std::to_string(shape_.block_size) + ", " +
                                                   std::to_string(free_blocks()) + " of " + std::to_string(num_blocks_) +
                                                   " are free");
  for (int i = 0; i < need; ++i) {
    s.blocks.push_back(free_.back());
    free_.pop_back();
  }
  return Status::Ok();
}

void PagedKvCache::release(int seq) {
  if (!valid(seq)) return;
  Sequence& s = seqs_[static_cast<std::size_t>(seq)];
  for (auto it = s.blocks.rbegin(); it != s.blocks.rend(); ++it) free_.push_back(*it);
  s = Sequence{};
  free_handles_.push_back(seq);
}

int64_t PagedKvCache::length(int seq) const { return seqs_[static_cast<std::size_t>(seq)].length; }

void PagedKvCache::set_length(int seq, int64_t length) {
  seqs_[static_cast<std::size_t>(seq)].length = std::min(length, capacity(seq));
}

int64_t PagedKvCache::capacity(int seq) const {
  return static_cast<int64_t>(seqs_[static_cast<std::size_t>(seq)].blocks.size()) * shape_.block_size;
}

const std::vector<int32_t>& PagedKvCache::block_table(int seq) const { return seqs_[static_cast<std::size_t>(seq)].blocks; }

int32_t PagedKvCache::slot(int seq, int64_t position) const {
  const auto& b = seqs_[static_cast<std::size_t>(seq)].blocks;
  return b[static_cast<std::size_t>(position / shape_.block_size)] * shape_.block_size +
         static_cast<int32_t>(position % shape_.block_size);
}

int PagedKvCache::live_sequences() const {
  return static_cast<int>(std::count_if(seqs_.begin(), seqs_.end(), [](const Sequence& s) { return s.live; }));
}

}  // namespace fathom::models::decoder
