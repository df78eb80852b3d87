#pragma once
// Raw-pointer CUDA kernels of the sequence ops (ops/conv1d.h, ops/attention_cached.h). Same conventions
// as kernels.h: a plain parameter struct and a stream, asynchronous, fathom::Exception on bad parameters
// (kInvalidArgument / kUnsupported) or launch failures (kInternal); no allocation, no synchronisation and
// no host read of device memory, so both are capturable in a CUDA graph. Element dtype f32, f16 or bf16;
// arithmetic in f32.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "base/dtype.h"

namespace fathom::cuda {

// im2col for a 1-D convolution over `batch` inputs, zero padding:
//   cols[b * t_out + t, ci * k + j] = x_b(t * stride + j - pad, ci)   (0 outside [0, t_in))
// x_b(t, ci) = x[b * t_in * c_in + t * time_stride + ci * channel_stride], i.e. time-major [T, C]
// (time_stride = c_in, channel_stride = 1) or channel-major [C, T] (time_stride = 1, channel_stride = t_in).
// cols: [batch * t_out, c_in * k] row-major, so that y = cols . w^T (+ bias) with w [c_out, c_in * k].
struct Im2colParams {
  DType dtype = DType::kF32;
  int batch = 0;
  int t_in = 0, c_in = 0, t_out = 0;
  int k = 0, stride = 1, pad = 0;
  bool channel_major = false;
  const void* x = nullptr;
  void* cols = nullptr;
};
void im2col_1d(const Im2colParams& p, cudaStream_t stream);

// One sequence of a cached-attention batch, as the kernel reads it from device memory.
struct CachedAttnSeq {
  const void* k = nullptr;  // key row 0, column 0 (row stride CachedAttentionParams::ld_kv)
  const void* v = nullptr;  // value row 0, column 0 (same stride)
  int32_t kv_len = 0;       // keys of the sequence
  int32_t q_start = 0;      // first query row in q / out
  int32_t q_len = 0;        // query rows of the sequence
  int32_t pad_ = 0;
};
static_assert(sizeof(CachedAttnSeq) == 32);

// Attention of packed queries over per-sequence key/value rows (see ops::attention_cached):
//   out[r, h*D:(h+1)*D] = softmax(scale * q_h[r] . k_h[j]) v_h[j], j over the keys query r may see
// (all kv_len keys, or with `causal` keys [0, kv_len - q_len + i] for the sequence's i-th query).
// Sequences, key lengths and query ranges are read on the device from `seqs` (num_seqs entries), so the
// same launch serves any batch within the bounds below. Queries of a sequence beyond max_q_len, and keys
// beyond max_kv_len, are not computed (the bounds size the grid). A query that sees no key gets zeros.
// K/V are read once per (sequence, head, block of up to 4 queries) with 16-byte loads where the pointers
// and ld_kv allow; when `splits` > 1 the key range is cut into that many parts whose partial results
// (in `partial`, partial_floats(...) floats) are merged by a second kernel (flash-decoding).
// head_dim <= 128.
struct CachedAttentionParams {
  DType dtype = DType::kF32;
  int heads = 0, head_dim = 0;
  const void* q = nullptr;  // [rows, ld_q]
  int ld_q = 0;
  void* out = nullptr;      // [rows, ld_out]
  int ld_out = 0;
  int64_t ld_kv = 0;        // key/value row stride (elements)
  bool kv_aligned = false;  // every seqs[i].k / .v is 16-byte aligned (with ld_kv and head_dim multiples
                            // of 16 bytes this enables 16-byte loads)
  const CachedAttnSeq* seqs = nullptr;  // device array
  int num_seqs = 0;
  int rows = 0;             // query rows (bound on q_start + q_len), sizes `partial`
  int max_q_len = 0;        // longest query range
  int max_kv_len = 0;       // longest key range
  bool causal = false;
  float scale = 1.f;
  int splits = 1;           // key-range splits (>= 1); choose with cached_attention_splits()
  float* partial = nullptr; // splits > 1: scratch of cached_attention_partial_floats() floats
};
void cached_attention(const CachedAttentionParams& p, cudaStream_t stream);

// Key-range splits worth using for a batch on a device with `sms` multiprocessors: 1 when the
// (sequence, head, query block) work items already fill the device or the keys are short.
int cached_attention_splits(int num_seqs, int max_q_len, int heads, int max_kv_len, int sms);
std::size_t cached_attention_partial_floats(int rows, int heads, int head_dim, int splits);

}  // namespace fathom::cuda
