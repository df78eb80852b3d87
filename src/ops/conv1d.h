#pragma once
// 1-D convolution over time (PyTorch nn.Conv1d semantics, zero padding, no dilation, no groups), batched.
#include "ops/common.h"

namespace fathom::ops {

enum class Conv1dInput {
  kTimeMajor,     // x [B, T_in, C_in] (or [T_in, C_in] for B = 1)
  kChannelMajor,  // x [B, C_in, T_in] (or [C_in, T_in]), e.g. a log-mel spectrogram [n_mels, frames]
};

// Output length for an input of t_in steps.
inline int64_t conv1d_output_length(int64_t t_in, int kernel, int stride, int pad) {
  return (t_in + 2 * pad - kernel) / stride + 1;
}

// y[b, t, co] = bias[co] + sum_{ci, j} w[co, ci, j] * x[b](t * stride + j - pad, ci).
// w: [C_out, C_in, K] (HF layout); bias: [C_out] or null; y: [B, T_out, C_out] (time-major; rank 2 or 3
// matching x), T_out = conv1d_output_length. f32 on CPU (scratch from ctx.workspace: T_out * C_in * K floats);
// f32, f16, bf16 on CUDA (im2col scratch from ctx.workspace, then one GEMM with the bias).
Status conv1d(ExecContext& ctx, const TensorView& x, Conv1dInput layout, const TensorView& w, const TensorView* bias,
              int stride, int pad, const TensorView& y);

}  // namespace fathom::ops
