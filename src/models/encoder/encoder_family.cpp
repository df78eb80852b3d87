#include "models/encoder/encoder_family.h"

namespace fathom::models::encoder {

Result<std::unique_ptr<Model>> load_encoder_family(const EncoderFamily& family, const std::filesystem::path& dir,
                                                   const nlohmann::json& config, const LoadOptions& options) {
  FATHOM_ASSIGN_OR_RETURN(ParsedEncoder parsed, family.parse(config, dir / "config.json"));
  return load_encoder(dir, config, options, family.info, std::move(parsed.spec), parsed.load_weights);
}

Result<int> encoder_position_limit(const EncoderFamily& family, const nlohmann::json& config,
                                   const std::filesystem::path& file) {
  FATHOM_ASSIGN_OR_RETURN(ParsedEncoder parsed, family.parse(config, file));
  return parsed.spec.position_limit;
}

}  // namespace fathom::models::encoder
