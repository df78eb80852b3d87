#pragma once
// Normalisations.
#include "ops/common.h"

namespace fathom::ops {

// out = LayerNorm(x + residual) * gamma + beta over the last dimension H (residual optional, same shape
// as x). gamma, beta: [H]. out has x's shape and may alias x or residual.
Status layer_norm(ExecContext& ctx, const TensorView& x, const TensorView* residual, const TensorView& gamma,
                  const TensorView& beta, float eps, const TensorView& out);

// out = x / sqrt(mean(x^2) + eps) * weight over the last dimension H (RMSNorm, as the Llama/Qwen family
// computes it in f32). weight: [H]; out has x's shape and may alias x. f32 on CPU; f32/f16/bf16 on CUDA.
Status rms_norm(ExecContext& ctx, const TensorView& x, const TensorView& weight, float eps, const TensorView& out);

// out = x / max(||x||_2, eps) per row (the last dimension), as torch.nn.functional.normalize.
Status l2_normalize(ExecContext& ctx, const TensorView& x, const TensorView& out, float eps = 1e-12f);

}  // namespace fathom::ops
