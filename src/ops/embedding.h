#pragma once
// Token embeddings: gather rows of the word table and add position and token-type rows.
#include "ops/common.h"

namespace fathom::ops {

// out[t] = word[ids[t]] + position[positions[t]] (when `position` is given)
//          + token_type[types ? types[t] : 0] (when `token_type` is given).
// ids, positions, types: int32 [T] on ctx.device; word [V, H], position [P, H], token_type [Y, H]; out [T, H].
// On CPU every index is checked against its table (kInvalidArgument naming the token and the table size).
struct EmbeddingTables {
  TensorView word;
  const TensorView* position = nullptr;
  const TensorView* token_type = nullptr;
};
Status embed_tokens(ExecContext& ctx, const TensorView& ids, const TensorView* positions, const TensorView* types,
                    const EmbeddingTables& tables, const TensorView& out);

}  // namespace fathom::ops
