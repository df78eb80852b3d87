#pragma once
// The (sequence, head) task loop of the CPU varlen attentions (attention_varlen in kernels.cpp,
// attention_varlen_extras in encoder_kernels.cpp, attention_varlen_causal in decoder_kernels.cpp), f32 on host
// pointers. Per task, over a packed fused qkv [t, (heads + 2 * kv_heads) * head_dim] (q | k | v; query head h
// reads key / value head h / (heads / kv_heads)) with sequence starts `cu` [batch + 1]: scores[len, len] = scale * q k^T,
// then `normalize(head, scores, len)` turns the scores into attention weights in place, then
// out[len, head_dim] = scores v. `scratch` holds attention_scratch_floats(max_seqlen) floats (kernels.h).
//
// With OpenBLAS, one (sequence, head) at a time and BLAS threads inside each product: a threaded BLAS
// called from several threads at once serialises badly (measured 20x slower). Without it, the tasks are
// spread over the pool, each product on its own thread.
#include <cstdint>

#include "backends/cpu/gemm.h"
#include "backends/cpu/parallel.h"

namespace fathom::cpu {

template <class Normalize>
void attention_varlen_tasks(const float* qkv, const int32_t* cu, int batch, int heads, int kv_heads, int head_dim,
                            float scale, float* out, float* scratch, int max_seqlen, const Normalize& normalize) {
  const int64_t hidden = static_cast<int64_t>(heads) * head_dim, kv_width = static_cast<int64_t>(kv_heads) * head_dim;
  const int64_t ld_qkv = hidden + 2 * kv_width;
  const int group = heads / kv_heads;
  const int64_t tasks = static_cast<int64_t>(batch) * heads;
  const bool blas = sgemm_uses_blas();
  auto gemm = blas ? sgemm : sgemm_serial;
  auto body = [&](int64_t i0, int64_t i1, int chunk) {
    float* scores = scratch + static_cast<std::size_t>(chunk) * max_seqlen * max_seqlen;
    for (int64_t task = i0; task < i1; ++task) {
      const int b = static_cast<int>(task / heads);
      const int h = static_cast<int>(task % heads);
      const int64_t start = cu[b];
      const int len = cu[b + 1] - cu[b];
      if (len <= 0) continue;
      const float* q = qkv + start * ld_qkv + static_cast<int64_t>(h) * head_dim;
      const float* k = qkv + start * ld_qkv + hidden + static_cast<int64_t>(h / group) * head_dim;
      const float* v = k + kv_width;
      float* o = out + start * hidden + static_cast<int64_t>(h) * head_dim;
      gemm(false, true, len, len, head_dim, scale, q, static_cast<int>(ld_qkv), k, static_cast<int>(ld_qkv), 0.0f,
           scores, len);
      normalize(h, scores, len);
      gemm(false, false, len, head_dim, len, 1.0f, scores, len, v, static_cast<int>(ld_qkv), 0.0f, o,
           static_cast<int>(hidden));
    }
  };
  if (blas)
    body(0, tasks, 0);
  else
    parallel_for(tasks, 1, body);
}

}  // namespace fathom::cpu
