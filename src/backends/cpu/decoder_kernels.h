#pragma once
// CPU kernels of the decoder-LLM family (ops/norm.h rms_norm, ops/activation.h silu_mul, ops/rotary.h,
// ops/attention_paged.h). f32, row-major, inputs validated by the ops layer; rows are spread over the CPU pool.
#include <cstdint>

namespace fathom::cpu {

// out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight over `cols` (out may alias x).
void rms_norm(const float* x, const float* weight, float eps, float* out, int64_t rows, int64_t cols);

// out[r, c] = silu(gate_up[r, c]) * gate_up[r, cols + c]; gate_up [rows, 2 * cols], out [rows, cols].
void silu_mul(const float* gate_up, float* out, int64_t rows, int64_t cols);

// In-place on fused rows qkv [tokens, ld] holding q heads [0, q_heads) then k heads [q_heads, q_heads +
// kv_heads), each head_dim wide: optional per-head RMSNorm of q (q_norm [head_dim]) and k (k_norm), then
// rotary positions in the rotate-half form: for i < head_dim / 2, angle = positions[t] * inv_freq[i],
//   x[i] <- x[i] c - x[i + half] s,  x[i + half] <- x[i + half] c + x[i] s,  c = cos(angle) * scaling,
//   s = sin(angle) * scaling.  Value heads (after the key heads) are not touched.
void qk_norm_rope(float* qkv, int64_t tokens, int64_t ld, int q_heads, int kv_heads, int head_dim,
                  const int32_t* positions, const float* inv_freq, float scaling, const float* q_norm,
                  const float* k_norm, float eps);

// Copies each token's key and value heads (columns [q_heads * head_dim, (q_heads + 2 kv_heads) * head_dim)
// of qkv [tokens, ld]) into row slots[t] of the layer's key / value pools ([slots, kv_heads * head_dim]).
// A negative slot skips the token.
void paged_kv_write(const float* qkv, int64_t tokens, int64_t ld, int q_heads, int kv_heads, int head_dim,
                    const int32_t* slots, float* k_pool, float* v_pool);

// Causal grouped-query attention over a paged cache. Sequence b: query rows [q_start, q_start + q_len) of
// qkv (q heads at column 0, row stride ld), kv_len cached positions whose position p lives in pool row
// block_tables[table_offset + p / block_size] * block_size + p % block_size. Query i (0-based) of the
// sequence sees positions [0, kv_len - q_len + i]. Query head h reads key/value head h / (q_heads / kv_heads).
// out [rows, q_heads * head_dim] (rows of sequences' queries only are written).
struct PagedSeqHost {
  int32_t q_start, q_len, kv_len, table_offset;
};
void attention_paged(const float* qkv, int64_t ld, const PagedSeqHost* seqs, int num_seqs, const int32_t* block_tables,
                     int block_size, const float* k_pool, const float* v_pool, int q_heads, int kv_heads, int head_dim,
                     float scale, float* out);

// Causal grouped-query self-attention over packed fresh sequences (a prefill with nothing cached): qkv
// [T, (q_heads + 2 kv_heads) * head_dim] (q | k | v), sequence b at rows [cu[b], cu[b + 1]), query i of a
// sequence sees its keys [0, i]. out [T, q_heads * head_dim]. scratch: attention_scratch_floats(max_seqlen)
// floats (kernels.h).
void attention_varlen_causal(const float* qkv, const int32_t* cu, int batch, int q_heads, int kv_heads, int head_dim,
                             float scale, float* out, float* scratch, int max_seqlen);

}  // namespace fathom::cpu
