#pragma once
// Element type conversion between float32, float16 and bfloat16 (round to nearest even when narrowing).
#include "ops/common.h"

namespace fathom::ops {

// dst = convert(src); same element count (shapes may differ in rank), floating dtypes only. On CPU
// both tensors are host memory; may be called with a CPU context to convert checkpoint data at load.
Status convert(ExecContext& ctx, const TensorView& src, const TensorView& dst);

}  // namespace fathom::ops
