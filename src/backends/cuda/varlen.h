#pragma once
// Packed variable-length batches: the device-side description that attention, pooling and the embedding
// kernels read, so that one CUDA graph per bucket of total token count serves any mix of sequence lengths.
//
// A batch of `num_seqs` sequences is packed without padding into rows [0, total_tokens) of the activation
// matrices; rows [total_tokens, padded_tokens) are a masked tail (attention writes zeros there, pooling
// never reads it). Everything lives in ONE int32 device buffer laid out by VarlenLayout:
//   [0] num_seqs  [1] num_tiles  [2] total_tokens  [3] padded_tokens
//   cu_seqlens[max_seqs + 1]     prefix sums of lengths (cu_seqlens[0] = 0)
//   tile_seq[max_tiles]          attention query tile -> sequence index, or -1 for a tail tile
//   tile_q0[max_tiles]           first packed row of the tile
//   input_ids[max_tokens], position_ids[max_tokens], token_type_ids[max_tokens]
// The host fills a pinned copy with fill_varlen() and uploads it with one cudaMemcpyAsync before the
// forward pass (outside graph capture); kernels read it at run time.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace fathom::cuda {

// Query rows per attention tile (must match the attention kernel).
inline constexpr int kAttnTileRows = 64;

struct VarlenLayout {
  int max_seqs = 0;    // most sequences in one batch
  int max_tokens = 0;  // padded token count (the bucket)
  int max_tiles() const { return (max_tokens + kAttnTileRows - 1) / kAttnTileRows + max_seqs + 1; }
  std::size_t off_cu_seqlens() const { return 4; }
  std::size_t off_tile_seq() const { return off_cu_seqlens() + max_seqs + 1; }
  std::size_t off_tile_q0() const { return off_tile_seq() + max_tiles(); }
  std::size_t off_input_ids() const { return off_tile_q0() + max_tiles(); }
  std::size_t off_position_ids() const { return off_input_ids() + max_tokens; }
  std::size_t off_token_type_ids() const { return off_position_ids() + max_tokens; }
  std::size_t total_ints() const { return off_token_type_ids() + max_tokens; }
};

// Device pointers into an uploaded varlen buffer.
struct VarlenView {
  const int32_t* header = nullptr;  // [0] num_seqs [1] num_tiles [2] total_tokens [3] padded_tokens
  const int32_t* cu_seqlens = nullptr;
  const int32_t* tile_seq = nullptr;
  const int32_t* tile_q0 = nullptr;
  const int32_t* input_ids = nullptr;
  const int32_t* position_ids = nullptr;
  const int32_t* token_type_ids = nullptr;
  int max_seqs = 0;
  int max_tokens = 0;
  int max_tiles = 0;
};

VarlenView varlen_view(const VarlenLayout& layout, const int32_t* device_buffer);

// Fills `host` (layout.total_ints() ints) for `sequences` (token ids). position_ids are
// position_offset + index within the sequence (BERT: 0; RoBERTa: padding_idx + 1); token types are 0;
// tail rows get id `pad_id`. Returns the number of real tokens. Throws fathom::Exception
// (kInvalidArgument) when the batch does not fit the layout.
int fill_varlen(const VarlenLayout& layout, const std::vector<std::vector<int32_t>>& sequences, int position_offset,
                int32_t pad_id, int32_t* host);

// Fills only the header, cu_seqlens and tile tables (not the id arrays) from prefix sums `cu`
// (batch + 1 entries, cu[0] = 0, non-decreasing, cu[batch] <= layout.max_tokens; empty sequences allowed).
void fill_varlen_meta(const VarlenLayout& layout, const int32_t* cu, int batch, int32_t* host);

}  // namespace fathom::cuda
