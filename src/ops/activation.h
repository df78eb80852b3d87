#pragma once
// Element-wise and row-wise ops: bias add, residual add, GELU, softmax. All outputs may alias inputs.
#include "ops/common.h"

namespace fathom::ops {

enum class GeluMode {
  kErf,   // 0.5 x (1 + erf(x / sqrt 2)): transformers' "gelu"
  kTanh,  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): "gelu_new", "gelu_pytorch_tanh", "gelu_fast"
};

// x[rows, N] += bias[N], in place.
Status bias_add(ExecContext& ctx, const TensorView& x, const TensorView& bias);
// out = a + b; all three the same shape.
Status add(ExecContext& ctx, const TensorView& a, const TensorView& b, const TensorView& out);
// y = gelu(x); same shape.
Status gelu(ExecContext& ctx, const TensorView& x, const TensorView& y, GeluMode mode);
// Softmax over the last dimension; same shape.
// y = tanh(x), elementwise (y may alias x); f32 on CPU, f32/f16/bf16 on CUDA.
Status tanh(ExecContext& ctx, const TensorView& x, const TensorView& y);
Status softmax(ExecContext& ctx, const TensorView& x, const TensorView& y);
// y = max(x, 0), elementwise (y may alias x). f32 on CPU; f32/f16/bf16 on CUDA.
Status relu(ExecContext& ctx, const TensorView& x, const TensorView& y);
// SwiGLU: out[r, c] = silu(gate_up[r, c]) * gate_up[r, I + c] with gate_up [rows, 2I] (the gate and up
// projections fused, gate first) and out [rows, I]; out must not alias gate_up. f32 on CPU; f32/f16/bf16 on CUDA.
Status silu_mul(ExecContext& ctx, const TensorView& gate_up, const TensorView& out);

// The activation of a gated MLP (GLU family).
enum class GatedActivation {
  kSilu,      // x * sigmoid(x): SwiGLU
  kGeluErf,   // exact GELU: GeGLU
  kGeluTanh,  // tanh-approximated GELU
};
// Gated linear unit over the two halves of each row of x [rows, 2N] (the output of one fused up | gate
// projection): with a = x[:, :N], b = x[:, N:],
//   activate_first:  y = act(a) * b        else:  y = a * act(b)
// y: [rows, N], must not alias x. f32 on CPU; f32/f16/bf16 on CUDA (f32 arithmetic).
Status gated_activation(ExecContext& ctx, const TensorView& x, const TensorView& y, GatedActivation act,
                        bool activate_first);

}  // namespace fathom::ops
