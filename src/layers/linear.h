#pragma once
// Building blocks over ops: a Linear layer (HF layout, weight [out, in]) and a LayerNorm. They hold
// views of weights owned elsewhere (a model's WeightStore).
#include "ops/gemm.h"
#include "ops/norm.h"

namespace fathom::layers {

struct Linear {
  TensorView weight;  // [out, in]
  TensorView bias;    // [out], or data == nullptr for none
  int64_t in_features() const { return weight.dim(1); }
  int64_t out_features() const { return weight.dim(0); }
  // y[rows, out] = x[rows, in] * weight^T + bias
  Status forward(ExecContext& ctx, const TensorView& x, const TensorView& y) const {
    return ops::linear(ctx, x, weight, bias.data ? &bias : nullptr, y);
  }
};

struct LayerNorm {
  TensorView gamma;  // [H]
  TensorView beta;   // [H]
  float eps = 1e-12f;
  // out = LayerNorm(x + residual); residual may be null; out may alias x or residual.
  Status forward(ExecContext& ctx, const TensorView& x, const TensorView* residual, const TensorView& out) const {
    return ops::layer_norm(ctx, x, residual, gamma, beta, eps, out);
  }
};

}  // namespace fathom::layers
