#pragma once
// The CUDA side of the op dispatch in src/ops/*.cpp. Arguments were already validated by the op (devices,
// dtypes, shapes); these map TensorViews onto the raw kernels on ctx.stream and turn exceptions into a
// Status. Contiguous row-major tensors; f32, f16 and bf16.
//
// Packed batches: `cu` (host, batch + 1 prefix sums). When `desc` is non-null it is the device copy of
// the batch description laid out as VarlenLayout{desc_max_seqs, total} (see varlen.h), which a model
// uploads before a captured graph replays; otherwise the op builds it in ctx.workspace with a host->device
// copy (eager execution only, not capturable).
#include <cstddef>
#include <cstdint>

#include "base/error.h"
#include "runtime/exec_context.h"
#include "runtime/tensor.h"

namespace fathom::cuda::ops {

Status linear(ExecContext& ctx, const TensorView& x, const TensorView& w, const TensorView* bias, const TensorView& y);
Status matmul(ExecContext& ctx, const TensorView& a, bool trans_a, const TensorView& b, bool trans_b,
              const TensorView& c, float alpha, float beta);
Status bias_add(ExecContext& ctx, const TensorView& x, const TensorView& bias);
Status add(ExecContext& ctx, const TensorView& a, const TensorView& b, const TensorView& out);
Status gelu(ExecContext& ctx, const TensorView& x, const TensorView& y, bool tanh);
Status tanh(ExecContext& ctx, const TensorView& x, const TensorView& y);
Status softmax(ExecContext& ctx, const TensorView& x, const TensorView& y);
Status layer_norm(ExecContext& ctx, const TensorView& x, const TensorView* residual, const TensorView& gamma,
                  const TensorView& beta, float eps, const TensorView& out);
Status l2_normalize(ExecContext& ctx, const TensorView& x, const TensorView& out, float eps);
Status embed_tokens(ExecContext& ctx, const TensorView& ids, const TensorView* positions, const TensorView* types,
                    const TensorView& word, const TensorView* position, const TensorView* token_type,
                    const TensorView& out);
// mode: 0 cls, 1 mean, 2 max, 3 last token (ops::PoolingMode order).
Status pool(ExecContext& ctx, const TensorView& hidden, const int32_t* cu, int batch, const int32_t* desc,
            int desc_max_seqs, int mode, const TensorView& out);
// distance_bias (f32 [heads, 2 * span - 1], device) and window_half >= 0: ops::AttentionExtras.
Status attention_varlen(ExecContext& ctx, const TensorView& qkv, const int32_t* cu, int batch, const int32_t* desc,
                        int desc_max_seqs, int heads, int head_dim, float scale, const TensorView& out,
                        const void* distance_bias = nullptr, int span = 0, int window_half = -1);
// Causal grouped-query attention (ops::attention_varlen_causal): qkv rows q | k | v of q_heads, kv_heads, kv_heads
// heads.
Status attention_varlen_causal(ExecContext& ctx, const TensorView& qkv, const int32_t* cu, int batch, const int32_t* desc,
                               int desc_max_seqs, int q_heads, int kv_heads, int head_dim, float scale,
                               const TensorView& out);
// Encoder ops (ops_cuda_encoder.cpp): ops::rotary_qk and ops::gated_activation (act in
// ops::GatedActivation order).
Status rotary_qk(ExecContext& ctx, const TensorView& qkv, const TensorView& positions, int heads, int head_dim,
                 int rotary_dim, const TensorView& inv_freq);
Status gated_activation(ExecContext& ctx, const TensorView& x, const TensorView& y, int act, bool activate_first);
Status convert(ExecContext& ctx, const TensorView& src, const TensorView& dst);

// Sequence ops (ops_cuda_sequence.cpp).
// conv1d: x [B, T_in, C_in] (or [B, C_in, T_in] when channel_major; rank 2 for B = 1), w [C_out, C_in, K],
// y [B, T_out, C_out]: im2col into ctx.workspace (batch items in chunks of at most ~64 MiB of columns)
// and one GEMM with the bias per chunk.
Status conv1d(ExecContext& ctx, const TensorView& x, bool channel_major, const TensorView& w, const TensorView* bias,
              int stride, int pad, const TensorView& y);
// attention_cached: `cu` (host, batch + 1 prefix sums) places sequence b's queries; keys[b] / values[b]
// are [L_b, ld] views with a common row length ld. The per-sequence pointers, lengths and query ranges
// are uploaded to ctx.workspace (stream-ordered copy) and read by the kernel on the device.
Status attention_cached(ExecContext& ctx, const TensorView& q, const int32_t* cu, int batch, const TensorView* keys,
                        const TensorView* values, int heads, int head_dim, float scale, bool causal,
                        const TensorView& out);
// attention_cached over a device descriptor of `num_seqs` cuda::CachedAttnSeq entries (ops::CachedSeq has
// the same layout) and fixed bounds; `scratch`: attention_cached_prepared_scratch() bytes of device memory.
// No allocation, copy or synchronisation: capturable.
std::size_t attention_cached_prepared_scratch(const ExecContext& ctx, int num_seqs, int rows, int max_q_len,
                                              int max_kv_len, int heads, int head_dim);
Status attention_cached_prepared(ExecContext& ctx, const TensorView& q, const void* seqs, int num_seqs, int rows,
                                 int max_q_len, int max_kv_len, int64_t ld_kv, bool kv_aligned, int heads,
                                 int head_dim, float scale, bool causal, void* scratch, const TensorView& out);

}  // namespace fathom::cuda::ops
