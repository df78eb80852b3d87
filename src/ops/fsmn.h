#pragma once
// The FSMN memory block of SAN-M encoder layers: a depthwise convolution over time of the attention values,
// within each sequence of a packed batch, plus the values themselves.
#include "ops/common.h"
#include "ops/varlen.h"

namespace fathom::ops {

// out[t, c] = v(t, c) + sum_{k < K} weight[c, 0, k] * v(t + k - left_pad, c), zero outside t's sequence,
// where v(t, c) = src[t, column + c] (e.g. the value part of a fused q|k|v matrix) and c < d = out.cols().
// src [T, >= column + d], weight [d, 1, K], out [T, d] (must not alias src), T = batch.total(). On CUDA the
// batch's cu_seqlens_device must be set. f32 on CPU; f32/f16/bf16 on CUDA.
Status fsmn_memory(ExecContext& ctx, const TensorView& src, int64_t column, const TensorView& weight, int left_pad,
                   const VarlenBatch& batch, const TensorView& out);

}  // namespace fathom::ops
