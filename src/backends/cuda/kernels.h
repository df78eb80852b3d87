#pragma once
// Raw-pointer CUDA kernels of the encoder path. Each takes a plain parameter struct and a stream, queues
// its work asynchronously, and throws fathom::Exception (kInvalidArgument for bad parameters, kUnsupported
// for an unsupported dtype/head size, kInternal for launch failures). All are graph-capturable: no
// allocation, no synchronisation, no host read of device memory.
//
// Element dtype `dtype` is one of f32, f16, bf16 for activations and weights; arithmetic is f32.
// Matrices are row-major with a leading dimension in elements.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "backends/cuda/varlen.h"
#include "base/dtype.h"

namespace fathom::cuda {

// out[r,:] = LayerNorm(in[r,:] (+ residual[r,:])) * gamma + beta over `cols` elements, eps inside sqrt.
// `out` may alias `in` or `residual`. cols <= 8192.
struct LayerNormParams {
  DType dtype = DType::kF32;
  int rows = 0, cols = 0;
  const void* in = nullptr;
  int ld_in = 0;
  const void* residual = nullptr;  // optional
  int ld_residual = 0;
  const void* gamma = nullptr;     // [cols]
  const void* beta = nullptr;      // [cols]
  void* out = nullptr;
  int ld_out = 0;
  float eps = 1e-12f;
};
void layer_norm(const LayerNormParams& p, cudaStream_t stream);

// BERT embeddings fused with their LayerNorm, for rows [0, tokens):
//   out[t] = LN(word[ids[t]] + position[pos_ids[t]] + token_type[type_ids[t]]) * gamma + beta
// Ids out of range are clamped (validated on the host before upload). `position` (with position_ids)
// and `token_type` may be null; with gamma == nullptr no LayerNorm is applied (plain gather-sum).
struct EmbeddingParams {
  DType dtype = DType::kF32;
  int tokens = 0, hidden = 0;
  const int32_t* ids = nullptr;
  const int32_t* position_ids = nullptr;
  const int32_t* token_type_ids = nullptr;  // may be null (type 0)
  const void* word = nullptr;        // [vocab, hidden]
  int vocab = 0;
  const void* position = nullptr;    // [max_positions, hidden]
  int max_positions = 0;
  const void* token_type = nullptr;  // [type_vocab, hidden] or null
  int type_vocab = 0;
  const void* gamma = nullptr;
  const void* beta = nullptr;
  float eps = 1e-12f;
  void* out = nullptr;  // [tokens, hidden], ld = hidden
};
void embedding_layer_norm(const EmbeddingParams& p, cudaStream_t stream);

// Multi-head self-attention over a packed varlen batch (no padding, no cross-sequence attention):
//   O[t, h*D:(h+1)*D] = softmax(scale * Q_h[t] K_g[s]^T) V_g[s],  s over t's own sequence (s <= t when causal),
//   g = h / (num_heads / kv_heads) (g = h without grouped-query heads).
// Tiled with an online softmax and f32 accumulation (K/V tiles staged in shared memory); f32 inputs are
// computed entirely in f32. Masked tail rows of the batch are written as zeros.
// head_dim: 1..128 (compiled widths 8, 16, 32, 64, 128; others are padded; a head_dim or leading dimension that is
// not a multiple of 4 takes a scalar-access instantiation). q, k, v may point into one fused QKV matrix (ld = 3*hidden).
struct AttentionParams {
  DType dtype = DType::kF32;
  int num_heads = 0, head_dim = 0;
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  int ld_qkv = 0;  // row stride of q, k and v (elements)
  void* out = nullptr;
  int ld_out = 0;
  float scale = 0.f;  // 0: 1/sqrt(head_dim)
  VarlenView batch;
  // Optional extras (the distance bias routes every dtype to the CUDA-core kernel):
  // additive f32 bias by relative distance, [num_heads, 2 * bias_span - 1]: score(i, j) += bias[h, j - i + span - 1]
  // (sequences at most bias_span long);
  const float* distance_bias = nullptr;
  int bias_span = 0;
  // sliding window: keys with |j - i| > window_half are masked (< 0: none).
  int window_half = -1;
  // Decoder prefill (both served by the tensor-core kernel too): grouped-query attention, query head h reading
  // key / value head h / (num_heads / kv_heads) (0: kv_heads = num_heads; num_heads a multiple of it), and a
  // causal mask, query row i of a sequence seeing keys j <= i only.
  int kv_heads = 0;
  bool causal = false;
};
void attention_varlen(const AttentionParams& p, cudaStream_t stream);

enum class PoolMode { kCls, kMean, kMax, kLast };

// out[s, :] ([batch.max_seqs, hidden], ld = hidden, dtype out_dtype: f32 or the input dtype) pooled
// over sequence s's rows, for s < num_seqs (read on the device); rows beyond num_seqs are untouched.
// If `normalize`, each pooled row is L2-normalised (x / max(||x||, 1e-12)).
struct PoolParams {
  DType dtype = DType::kF32;
  PoolMode mode = PoolMode::kMean;
  int hidden = 0;
  const void* in = nullptr;
  int ld_in = 0;
  void* out = nullptr;
  DType out_dtype = DType::kF32;
  bool normalize = false;
  VarlenView batch;
};
void pool(const PoolParams& p, cudaStream_t stream);

// In-place L2 normalisation of f32 rows: x / max(||x||_2, 1e-12).
void l2_normalize(float* data, int rows, int cols, int ld, cudaStream_t stream);
// out = in / max(||in||_2, eps) per contiguous row of `cols`; out may alias in.
void l2_normalize_rows(DType dtype, const void* in, void* out, int rows, int cols, float eps, cudaStream_t stream);

// Element-wise on contiguous data (outputs may alias inputs):
// x[rows, cols] += bias[cols]
void bias_add(DType dtype, void* x, const void* bias, std::size_t rows, int cols, cudaStream_t stream);
// out = a + b over n elements
void add(DType dtype, const void* a, const void* b, void* out, std::size_t n, cudaStream_t stream);
// y = gelu(x) over n elements; tanh approximation when `tanh`, else exact erf.
void gelu(DType dtype, const void* x, void* y, std::size_t n, bool tanh, cudaStream_t stream);
// y = tanh(x) over n elements (y may alias x).
void tanh(DType dtype, const void* x, void* y, std::size_t n, cudaStream_t stream);
// Softmax over each contiguous row of `cols`.
void softmax_rows(DType dtype, const void* x, void* y, int rows, int cols, cudaStream_t stream);

// Element-wise dtype conversion of n elements (f32/f16/bf16 both ways, round-to-nearest-even).
void convert(DType src_dtype, const void* src, DType dst_dtype, void* dst, std::size_t n, cudaStream_t stream);

}  // namespace fathom::cuda
