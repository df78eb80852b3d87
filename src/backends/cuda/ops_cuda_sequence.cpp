// CUDA side of ops::conv1d and ops::attention_cached (declared in ops_cuda.h).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "backends/cuda/blas.h"
#include "backends/cuda/check.h"
#include "backends/cuda/context.h"
#include "backends/cuda/device.h"
#include "backends/cuda/ops_cuda.h"
#include "backends/cuda/sequence_kernels.h"
#include "backends/cuda/sm_partition.h"

namespace fathom::cuda::ops {
namespace {

cudaStream_t stream_of(const ExecContext& ctx) { return static_cast<cudaStream_t>(ctx.stream); }

// Upper bound on the im2col scratch of one chunk of batch items (a single item may exceed it).
constexpr std::size_t kIm2colChunkBytes = 64u << 20;

std::size_t align_up(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }

// Split count of the cached-attention kernel: sized for the SMs the context's stream may use (its SM
// partition's, or the device's), the same at scratch sizing and at launch.
int cached_splits(const ExecContext& ctx, int num_seqs, int max_q_len, int max_kv_len, int heads) {
  return cached_attention_splits(num_seqs, max_q_len, heads, max_kv_len,
                                 stream_sm_count(stream_of(ctx), ctx.device.index));
}

// Everything of CachedAttentionParams but the device descriptor (`seqs`) and the split scratch (`partial`).
CachedAttentionParams cached_params(const ExecContext& ctx, const TensorView& q, const TensorView& out, int heads,
                                    int head_dim, int64_t ld_kv, bool kv_aligned, int num_seqs, int rows,
                                    int max_q_len, int max_kv_len, bool causal, float scale) {
  CachedAttentionParams p;
  p.dtype = q.dtype;
  p.heads = heads;
  p.head_dim = head_dim;
  p.q = q.data; p.ld_q = heads * head_dim;
  p.out = out.data; p.ld_out = heads * head_dim;
  p.ld_kv = ld_kv;
  p.kv_aligned = kv_aligned;
  p.num_seqs = num_seqs;
  p.rows = rows;
  p.max_q_len = max_q_len;
  p.max_kv_len = max_kv_len;
  p.causal = causal;
  p.scale = scale;
  p.splits = cached_splits(ctx, num_seqs, max_q_len, max_kv_len, heads);
  return p;
}

}  // namespace

Status conv1d(ExecContext& ctx, const TensorView& x, bool channel_major, const TensorView& w, const TensorView* bias,
              int stride, int pad, const TensorView& y) {
  return status_from_exceptions([&] {
    const bool batched = x.shape.rank == 3;
    const int64_t batch = batched ? x.dim(0) : 1;
    const int64_t d0 = x.dim(batched ? 1 : 0), d1 = x.dim(batched ? 2 : 1);
    const int64_t t_in = channel_major ? d1 : d0, c_in = channel_major ? d0 : d1;
    const int64_t c_out = w.dim(0), k = w.dim(2);
    const int64_t t_out = y.dim(batched ? 1 : 0);
    if (batch == 0 || t_out == 0 || c_out == 0) return;
    const std::size_t es = dtype_size(x.dtype);
    const int64_t ck = c_in * k;
    const std::size_t item_bytes = static_cast<std::size_t>(t_out * ck) * es;
    const int64_t per_chunk = std::clamp<int64_t>(static_cast<int64_t>(kIm2colChunkBytes / std::max<std::size_t>(item_bytes, 1)), 1, batch);
    if (per_chunk * t_out > INT32_MAX || ck > INT32_MAX || t_in > INT32_MAX)
      throw Exception(ErrorCode::kInvalidArgument, "conv1d on cuda: input of " + x.shape.to_string() + " is too large");
    if (!ctx.workspace) throw Exception(ErrorCode::kInvalidArgument, "conv1d: ExecContext has no workspace");
    Result<void*> scratch = ctx.workspace->get(item_bytes * static_cast<std::size_t>(per_chunk));
    if (!scratch.ok()) throw Exception(scratch.error().code, scratch.error().message);
    BlasLt& blas = device_blas(ctx.device.index);
    for (int64_t b0 = 0; b0 < batch; b0 += per_chunk) {
      const int64_t nb = std::min(per_chunk, batch - b0);
      Im2colParams ip;
      ip.dtype = x.dtype;
      ip.batch = static_cast<int>(nb);
      ip.t_in = static_cast<int>(t_in); ip.c_in = static_cast<int>(c_in); ip.t_out = static_cast<int>(t_out);
      ip.k = static_cast<int>(k); ip.stride = stride; ip.pad = pad;
      ip.channel_major = channel_major;
      ip.x = static_cast<const char*>(x.data) + static_cast<std::size_t>(b0 * t_in * c_in) * es;
      ip.cols = *scratch;
      im2col_1d(ip, stream_of(ctx));
      GemmParams gp;
      gp.dtype = x.dtype;
      gp.m = static_cast<int>(nb * t_out);
      gp.n = static_cast<int>(c_out);
      gp.k = static_cast<int>(ck);
      gp.x = *scratch; gp.ldx = gp.k;
      gp.w = w.data; gp.ldw = gp.k;
      gp.bias = bias ? bias->data : nullptr;
      gp.y = static_cast<char*>(y.data) + static_cast<std::size_t>(b0 * t_out * c_out) * es;
      gp.ldy = gp.n;
      blas.gemm(gp, stream_of(ctx));
    }
  });
}

Status attention_cached(ExecContext& ctx, const TensorView& q, const int32_t* cu, int batch, const TensorView* keys,
                        const TensorView* values, int heads, int head_dim, float scale, bool causal,
                        const TensorView& out) {
  return status_from_exceptions([&] {
    if (batch == 0 || cu[batch] == 0) return;
    std::vector<CachedAttnSeq> seqs(static_cast<std::size_t>(batch));
    int max_q = 0, max_kv = 0;
    bool aligned = true;
    for (int b = 0; b < batch; ++b) {
      CachedAttnSeq& s = seqs[static_cast<std::size_t>(b)];
      const TensorView& k = keys[b];
      const TensorView& v = values[b];
      s.k = k.data;
      s.v = v.data;
      if (k.rows() > INT32_MAX) throw Exception(ErrorCode::kInvalidArgument, "attention_cached: too many keys");
      s.kv_len = static_cast<int32_t>(k.rows());
      s.q_start = cu[b];
      s.q_len = cu[b + 1] - cu[b];
      max_q = std::max(max_q, s.q_len);
      max_kv = std::max(max_kv, s.kv_len);
      aligned = aligned && reinterpret_cast<uintptr_t>(k.data) % 16 == 0 && reinterpret_cast<uintptr_t>(v.data) % 16 == 0;
    }
    CachedAttentionParams p = cached_params(ctx, q, out, heads, head_dim, keys[0].cols(), aligned, batch, cu[batch],
                                            max_q, max_kv, causal, scale);
    const std::size_t desc_bytes = align_up(seqs.size() * sizeof(CachedAttnSeq), 256);
    const std::size_t partial_bytes = cached_attention_partial_floats(p.rows, heads, head_dim, p.splits) * sizeof(float);
    if (!ctx.workspace) throw Exception(ErrorCode::kInvalidArgument, "attention_cached: ExecContext has no workspace");
    Result<void*> scratch = ctx.workspace->get(desc_bytes + partial_bytes);
    if (!scratch.ok()) throw Exception(scratch.error().code, scratch.error().message);
    char* base = static_cast<char*>(*scratch);
    // Pageable source: the call returns once the data is staged, so `seqs` may go out of scope.
    FATHOM_CUDA_CHECK(cudaMemcpyAsync(base, seqs.data(), seqs.size() * sizeof(CachedAttnSeq), cudaMemcpyHostToDevice,
                                      stream_of(ctx)));
    p.seqs = reinterpret_cast<const CachedAttnSeq*>(base);
    p.partial = p.splits > 1 ? reinterpret_cast<float*>(base + desc_bytes) : nullptr;
    cached_attention(p, stream_of(ctx));
  });
}

std::size_t attention_cached_prepared_scratch(const ExecContext& ctx, int num_seqs, int rows, int max_q_len,
                                              int max_kv_len, int heads, int head_dim) {
  const int splits = cached_splits(ctx, num_seqs, max_q_len, max_kv_len, heads);
  return cached_attention_partial_floats(rows, heads, head_dim, splits) * sizeof(float);
}

Status attention_cached_prepared(ExecContext& ctx, const TensorView& q, const void* seqs, int num_seqs, int rows,
                                 int max_q_len, int max_kv_len, int64_t ld_kv, bool kv_aligned, int heads,
                                 int head_dim, float scale, bool causal, void* scratch, const TensorView& out) {
  return status_from_exceptions([&] {
    CachedAttentionParams p = cached_params(ctx, q, out, heads, head_dim, ld_kv, kv_aligned, num_seqs, rows, max_q_len,
                                            max_kv_len, causal, scale);
    p.seqs = static_cast<const CachedAttnSeq*>(seqs);
    if (p.splits > 1 && !scratch)
      throw Exception(ErrorCode::kInvalidArgument, "attention_cached_prepared: the split kernel needs scratch");
    p.partial = p.splits > 1 ? static_cast<float*>(scratch) : nullptr;
    cached_attention(p, stream_of(ctx));
  });
}

}  // namespace fathom::cuda::ops
