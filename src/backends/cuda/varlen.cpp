#include "backends/cuda/varlen.h"

#include <algorithm>
#include <string>

#include "base/error.h"

namespace fathom::cuda {

VarlenView varlen_view(const VarlenLayout& l, const int32_t* d) {
  VarlenView v;
  v.header = d;
  v.cu_seqlens = d + l.off_cu_seqlens();
  v.tile_seq = d + l.off_tile_seq();
  v.tile_q0 = d + l.off_tile_q0();
  v.input_ids = d + l.off_input_ids();
  v.position_ids = d + l.off_position_ids();
  v.token_type_ids = d + l.off_token_type_ids();
  v.max_seqs = l.max_seqs;
  v.max_tokens = l.max_tokens;
  v.max_tiles = l.max_tiles();
  return v;
}

int fill_varlen(const VarlenLayout& l, const std::vector<std::vector<int32_t>>& seqs, int position_offset,
                int32_t pad_id, int32_t* h) {
  if (static_cast<int>(seqs.size()) > l.max_seqs)
    throw Exception(ErrorCode::kInvalidArgument, "varlen batch of " + std::to_string(seqs.size()) +
                                                     " sequences exceeds the limit of " + std::to_string(l.max_seqs));
  std::size_t total = 0;
  for (auto& s : seqs) {
    if (s.empty()) throw Exception(ErrorCode::kInvalidArgument, "varlen batch holds an empty sequence");
    total += s.size();
  }
  if (total > static_cast<std::size_t>(l.max_tokens))
    throw Exception(ErrorCode::kInvalidArgument, "varlen batch of " + std::to_string(total) +
                                                     " tokens exceeds the bucket of " + std::to_string(l.max_tokens));
  int32_t* ids = h + l.off_input_ids();
  int32_t* pos = h + l.off_position_ids();
  int32_t* typ = h + l.off_token_type_ids();
  std::vector<int32_t> cu(seqs.size() + 1, 0);
  int row = 0;
  for (std::size_t s = 0; s < seqs.size(); ++s) {
    const int n = static_cast<int>(seqs[s].size());
    for (int i = 0; i < n; ++i) {
      ids[row + i] = seqs[s][i];
      pos[row + i] = position_offset + i;
      typ[row + i] = 0;
    }
    row += n;
    cu[s + 1] = row;
  }
  for (int r = row; r < l.max_tokens; ++r) {
    ids[r] = pad_id;
    pos[r] = position_offset;
    typ[r] = 0;
  }
  fill_varlen_meta(l, cu.data(), static_cast<int>(seqs.size()), h);
  return row;
}

void fill_varlen_meta(const VarlenLayout& l, const int32_t* cu_in, int batch, int32_t* h) {
  if (batch > l.max_seqs || batch < 0)
    throw Exception(ErrorCode::kInvalidArgument, "varlen batch of " + std::to_string(batch) +
                                                     " sequences exceeds the limit of " + std::to_string(l.max_seqs));
  if (cu_in[batch] > l.max_tokens)
    throw Exception(ErrorCode::kInvalidArgument, "varlen batch of " + std::to_string(cu_in[batch]) +
                                                     " tokens exceeds the bucket of " + std::to_string(l.max_tokens));
  int32_t* cu = h + l.off_cu_seqlens();
  int32_t* tseq = h + l.off_tile_seq();
  int32_t* tq0 = h + l.off_tile_q0();
  int tiles = 0;
  cu[0] = 0;
  for (int s = 0; s < batch; ++s) {
    const int beg = cu_in[s], end = cu_in[s + 1];
    for (int q = beg; q < end; q += kAttnTileRows) {
      tseq[tiles] = s;
      tq0[tiles] = q;
      ++tiles;
    }
    cu[s + 1] = end;
  }
  const int row = cu_in[batch];
  for (int s = batch + 1; s <= l.max_seqs; ++s) cu[s] = row;
  for (int r = row; r < l.max_tokens; r += kAttnTileRows) {  // masked tail: zero-writing tiles
    tseq[tiles] = -1;
    tq0[tiles] = r;
    ++tiles;
  }
  for (int t = tiles; t < l.max_tiles(); ++t) {
    tseq[t] = -1;
    tq0[t] = l.max_tokens;
  }
  h[0] = batch;
  h[1] = tiles;
  h[2] = row;
  h[3] = l.max_tokens;
}

}  // namespace fathom::cuda
