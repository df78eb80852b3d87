#pragma once
// Raw-pointer CUDA kernels of the decoder-LLM family (ops/norm.h rms_norm, ops/activation.h silu_mul,
// ops/rotary.h qk_norm_rope, ops/attention_paged.h). Same conventions as kernels.h: a plain parameter
// struct and a stream, asynchronous, fathom::Exception on bad parameters (kInvalidArgument / kUnsupported)
// or launch failures (kInternal). Every per-batch quantity (positions, slots, sequence descriptors, block
// tables) is read from device memory by the kernels and grids are sized by fixed bounds, so each launch is
// capturable in a CUDA graph: no allocation, no synchronisation, no host read of device memory. Element
// dtype f32, f16 or bf16 (activations, weights and the KV pools share it); arithmetic in f32.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "base/dtype.h"

namespace fathom::cuda {

// out[r, :] = in[r, :] * rsqrt(mean(in[r, :]^2) + eps) * weight, contiguous rows of `cols`; out may alias in.
void rms_norm(DType dtype, const void* in, const void* weight, float eps, void* out, int rows, int cols,
              cudaStream_t stream);

// out[r, c] = silu(gate_up[r, c]) * gate_up[r, cols + c]; gate_up [rows, 2 cols], out [rows, cols].
void silu_mul(DType dtype, const void* gate_up, void* out, int rows, int cols, cudaStream_t stream);

// out[r] = index of the largest value of row r of `in` (f32 [rows, cols], contiguous), the first one on
// ties (torch.argmax's and std::max_element's choice); one block per row. Greedy decoding reads these
// rows' ids instead of downloading [rows, vocab] logits.
void argmax_rows(const float* in, int32_t* out, int rows, int cols, cudaStream_t stream);

// In place on fused q | k | v rows (see cpu::qk_norm_rope): per-head RMSNorm of q / k heads (weights may be
// null), then rotate-half rotary positions with angle positions[t] * inv_freq[i] (inv_freq f32 on the
// device, head_dim / 2 entries) and cos / sin multiplied by `scaling`. head_dim even and <= 256.
struct QkNormRopeParams {
  DType dtype = DType::kF32;
  void* qkv = nullptr;
  int tokens = 0;
  int ld = 0;  // row stride of qkv (elements)
  int q_heads = 0, kv_heads = 0, head_dim = 0;
  const int32_t* positions = nullptr;  // [tokens] on the device
  const float* inv_freq = nullptr;     // [head_dim / 2] on the device
  float scaling = 1.f;
  const void* q_norm = nullptr;  // [head_dim] or null
  const void* k_norm = nullptr;  // [head_dim] or null
  float eps = 1e-6f;
};
void qk_norm_rope(const QkNormRopeParams& p, cudaStream_t stream);

// Key and value heads of each token (columns q_heads * head_dim onwards of qkv) copied to pool row
// slots[t] (slots on the device; negative: skipped). Pools [pool rows, kv_heads * head_dim].
struct PagedKvWriteParams {
  DType dtype = DType::kF32;
  const void* qkv = nullptr;
  int tokens = 0;
  int ld = 0;
  int q_heads = 0, kv_heads = 0, head_dim = 0;
  const int32_t* slots = nullptr;
  void* k_pool = nullptr;
  void* v_pool = nullptr;
};
void paged_kv_write(const PagedKvWriteParams& p, cudaStream_t stream);

// One sequence of a paged-attention batch as the kernel reads it (ops::PagedSeq has the same layout).
struct PagedAttnSeq {
  int32_t q_start = 0;       // first query row in qkv / out
  int32_t q_len = 0;         // query rows
  int32_t kv_len = 0;        // cached positions, the new ones included
  int32_t table_offset = 0;  // index of the sequence's first block in block_tables
};
static_assert(sizeof(PagedAttnSeq) == 16);

// Causal grouped-query attention over a paged KV cache (see cpu::attention_paged). The grid covers
// (num_seqs, max_q_len, q_heads); entries beyond a sequence's q_len do nothing; a query that sees no key
// gets zeros. One warp per query head, online softmax over the visible keys. head_dim <= 256.
struct PagedAttentionParams {
  DType dtype = DType::kF32;
  const void* qkv = nullptr;  // queries: q heads at column 0 of rows, stride ld
  int ld = 0;
  const PagedAttnSeq* seqs = nullptr;  // device
  int num_seqs = 0;
  int max_q_len = 0;
  const int32_t* block_tables = nullptr;  // device
  int block_size = 0;
  const void* k_pool = nullptr;
  const void* v_pool = nullptr;
  int q_heads = 0, kv_heads = 0, head_dim = 0;
  float scale = 1.f;
  void* out = nullptr;  // [rows, q_heads * head_dim]
};
void attention_paged(const PagedAttentionParams& p, cudaStream_t stream);

}  // namespace fathom::cuda
