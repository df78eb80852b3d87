#pragma once
// An encoder family served by the shared runtime (encoder_embedder.h), as one value: its ModelInfo and how
// it reads config.json. A family folder supplies only what differs — its config parser (into an EncoderSpec
// plus the family's own `Extra` settings) and its tensor names — and make_encoder_family binds the two; the
// registry loads through load_encoder_family and `fathom inspect` asks encoder_position_limit.
#include <filesystem>
#include <functional>
#include <memory>
#include <utility>

#include <nlohmann/json.hpp>

#include "models/encoder/encoder_embedder.h"
#include "models/encoder/encoder_spec.h"
#include "models/encoder/weight_loader.h"
#include "models/model.h"
#include "models/registry.h"

namespace fathom::models::encoder {

// config.json parsed: the network and the function that fills its weights (holding the family's extras).
struct ParsedEncoder {
  EncoderSpec spec;
  WeightsFn load_weights;
};

struct EncoderFamily {
  ModelInfo info;
  // Parses config.json (`file` names it in messages); errors are the family's config errors.
  std::function<Result<ParsedEncoder>(const nlohmann::json& config, const std::filesystem::path& file)> parse;
};

// A family from its two functions: `parse` fills the spec and `Extra` (settings only the family's weights
// need: biases, rope bases, table sizes); `load_weights` names the tensors with them.
template <class Extra>
EncoderFamily make_encoder_family(
    ModelInfo info, Result<EncoderSpec> (*parse)(const nlohmann::json&, const std::filesystem::path&, Extra&),
    Status (*load_weights)(WeightLoader&, const EncoderSpec&, const Extra&, EncoderWeights&)) {
  EncoderFamily family;
  family.info = std::move(info);
  family.parse = [parse, load_weights](const nlohmann::json& config,
                                       const std::filesystem::path& file) -> Result<ParsedEncoder> {
    Extra extra;
    FATHOM_ASSIGN_OR_RETURN(EncoderSpec spec, parse(config, file, extra));
    WeightsFn weights = [load_weights, extra](WeightLoader& w, const EncoderSpec& s, EncoderWeights& out) {
      return load_weights(w, s, extra, out);
    };
    return ParsedEncoder{std::move(spec), std::move(weights)};
  };
  return family;
}

// Loads DIR as `family` (config.json already read into `config`): parse, then load_encoder.
Result<std::unique_ptr<Model>> load_encoder_family(const EncoderFamily& family, const std::filesystem::path& dir,
                                                   const nlohmann::json& config, const LoadOptions& options);

// The longest sequence config.json lets `family` embed (its position limit), or the config error.
Result<int> encoder_position_limit(const EncoderFamily& family, const nlohmann::json& config,
                                   const std::filesystem::path& file);

}  // namespace fathom::models::encoder
