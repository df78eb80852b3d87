#pragma once
// Matrix products.
#include "ops/common.h"

namespace fathom::ops {

// y[M,N] = x[M,K] * w[N,K]^T (+ bias[N]): a Linear layer with Hugging Face's weight layout [out, in].
// x may have leading dims (read as [rows, K]); y must have x's rows and N columns. Same dtype throughout.
// y must not alias x or w.
Status linear(ExecContext& ctx, const TensorView& x, const TensorView& w, const TensorView* bias, const TensorView& y);

// c[M,N] = alpha * op(a) * op(b) + beta * c for 2-D tensors; op transposes when the flag is set.
Status matmul(ExecContext& ctx, const TensorView& a, bool trans_a, const TensorView& b, bool trans_b,
              const TensorView& c, float alpha = 1.0f, float beta = 0.0f);

}  // namespace fathom::ops
