#pragma once
// What happens to a pooled vector after the model: Matryoshka truncation, then L2 normalisation.
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"

namespace fathom::engine {

// Keeps the first `dimensions` values (when set; must be 1..v.size()), then L2-normalises when `normalize`
// (a zero vector stays zero).
void finish_embedding(std::vector<float>& v, std::optional<int> dimensions, bool normalize);

// Checks a requested `dimensions` against what the model allows: `declared` lists the Matryoshka sizes;
// when it holds only the full size (is_matryoshka without a list) any size 1..full is allowed. The error
// (param "dimensions") states the allowed values.
Status check_dimensions(const std::string& model, int requested, bool supports_matryoshka,
                        const std::vector<int>& declared, int full);

}  // namespace fathom::engine
