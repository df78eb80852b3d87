#include "engine/embedding_postprocess.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace fathom::engine {

void finish_embedding(std::vector<float>& v, std::optional<int> dimensions, bool normalize) {
  if (dimensions && *dimensions > 0 && static_cast<std::size_t>(*dimensions) < v.size()) {
    v.resize(static_cast<std::size_t>(*dimensions));
  }
  if (!normalize) return;
  double sum = 0.0;
  for (float x : v) sum += static_cast<double>(x) * x;
  if (sum <= 0.0) return;
  const double inv = 1.0 / std::sqrt(sum);
  for (float& x : v) x = static_cast<float>(x * inv);
}

Status check_dimensions(const std::string& model, int requested, bool supports_matryoshka,
                        const std::vector<int>& declared, int full) {
  if (!supports_matryoshka) {
    return make_error(ErrorCode::kUnsupported,
                      "model '" + model + "' does not support dimensions (it is not a Matryoshka model; "
                      "its embeddings always have " + std::to_string(full) + " dimensions)",
                      "dimensions");
  }
  const bool any_size = declared.empty() || (declared.size() == 1 && declared[0] == full);
  if (any_size) {
    if (requested < 1 || requested > full) {
      return make_error(ErrorCode::kInvalidArgument,
                        "dimensions must be between 1 and " + std::to_string(full) + " for model '" + model +
                            "', got " + std::to_string(requested),
                        "dimensions");
    }
    return Status::Ok();
  }
  if (requested != full && std::find(declared.begin(), declared.end(), requested) == declared.end()) {
    std::string allowed;
    for (int d : declared) allowed += (allowed.empty() ? "" : ", ") + std::to_string(d);
    return make_error(ErrorCode::kInvalidArgument,
                      "dimensions must be one of " + allowed + " for model '" + model + "', got " +
                          std::to_string(requested),
                      "dimensions");
  }
  return Status::Ok();
}

std::vector<std::pair<int32_t, float>> lexical_weights(const std::vector<int32_t>& ids,
                                                       const std::vector<float>& weights) {
  std::map<int32_t, float> best;
  for (std::size_t i = 0; i < ids.size() && i < weights.size(); ++i) {
    if (!(weights[i] > 0.0f)) continue;
    auto [it, inserted] = best.emplace(ids[i], weights[i]);
    if (!inserted) it->second = std::max(it->second, weights[i]);
  }
  return {best.begin(), best.end()};
}

std::vector<std::vector<float>> multi_vectors(const std::vector<float>& rows, int width, bool normalize) {
  std::vector<std::vector<float>> out;
  if (width <= 0) return out;
  const std::size_t w = static_cast<std::size_t>(width);
  out.reserve(rows.size() / w);
  for (std::size_t at = 0; at + w <= rows.size(); at += w) {
    out.emplace_back(rows.begin() + static_cast<std::ptrdiff_t>(at), rows.begin() + static_cast<std::ptrdiff_t>(at + w));
    finish_embedding(out.back(), std::nullopt, normalize);
  }
  return out;
}

}  // namespace fathom::engine
