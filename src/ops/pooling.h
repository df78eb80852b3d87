#pragma once
// Pooling token states into one vector per sequence of a packed batch.
#include <optional>
#include <string_view>

#include "ops/common.h"
#include "ops/varlen.h"

namespace fathom::ops {

enum class PoolingMode {
  kCls,        // first token
  kMean,       // mean over the sequence's tokens
  kMax,        // element-wise max over the tokens
  kLastToken,  // last token
};
const char* pooling_mode_name(PoolingMode mode);  // "cls", "mean", "max", "lasttoken"
std::optional<PoolingMode> parse_pooling_mode(std::string_view name);

// hidden: [T, H] with T = batch.total(); out: [batch.batch(), H]. Empty sequences pool to zeros.
Status pool(ExecContext& ctx, const TensorView& hidden, const VarlenBatch& batch, PoolingMode mode,
            const TensorView& out);

}  // namespace fathom::ops
