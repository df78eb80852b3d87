#include "models/encoder/family_checks.h"

#include "formats/json_file.h"

namespace fathom::models::encoder {

Result<Dimensions> read_dimensions(const nlohmann::json& config, const std::filesystem::path& file, EncoderSpec& spec,
                                   const DimensionKeys& keys) {
  using formats::json_positive_int;
  Dimensions d;
  FATHOM_ASSIGN_OR_RETURN(spec.hidden, json_positive_int(config, keys.hidden, file));
  FATHOM_ASSIGN_OR_RETURN(d.layers, json_positive_int(config, keys.layers, file));
  FATHOM_ASSIGN_OR_RETURN(spec.heads, json_positive_int(config, keys.heads, file));
  if (keys.intermediate) {
    FATHOM_ASSIGN_OR_RETURN(spec.intermediate, json_positive_int(config, keys.intermediate, file));
  }
  FATHOM_ASSIGN_OR_RETURN(spec.vocab, json_positive_int(config, "vocab_size", file));
  if (keys.max_positions) {
    FATHOM_ASSIGN_OR_RETURN(d.max_positions, json_positive_int(config, keys.max_positions, file));
  }
  return d;
}

Status set_head_dim(EncoderSpec& spec, const char* hidden_key, const char* heads_key, const std::filesystem::path& file) {
  if (spec.hidden % spec.heads != 0)
    return make_error(ErrorCode::kLoadFailed, file.string() + ": " + hidden_key + " " + std::to_string(spec.hidden) +
                                                  " is not divisible by " + heads_key + " " + std::to_string(spec.heads));
  spec.head_dim = spec.hidden / spec.heads;
  return Status::Ok();
}

Status require_even_head_dim(const EncoderSpec& spec, const std::filesystem::path& file) {
  if (spec.head_dim % 2 != 0)
    return make_error(ErrorCode::kUnsupported,
                      file.string() + ": rotary needs an even head size, got " + std::to_string(spec.head_dim));
  return Status::Ok();
}

Result<ops::GeluMode> parse_gelu_mode(const std::string& name, const char* key, const std::filesystem::path& file) {
  if (name == "gelu") return ops::GeluMode::kErf;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return ops::GeluMode::kTanh;
  return make_error(ErrorCode::kUnsupported, file.string() + ": " + key + " '" + name +
                                                 "' is not supported (supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast)");
}

Result<ops::GatedActivation> parse_gated_activation(const std::string& name, const char* key,
                                                    const std::filesystem::path& file) {
  if (name == "gelu") return ops::GatedActivation::kGeluErf;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return ops::GatedActivation::kGeluTanh;
  if (name == "silu" || name == "swish") return ops::GatedActivation::kSilu;
  return make_error(ErrorCode::kUnsupported, file.string() + ": " + key + " '" + name +
                                                 "' is not supported (supported: gelu, gelu_new, gelu_pytorch_tanh, silu)");
}

Status refuse_extra_layer(const WeightLoader& w, const EncoderSpec& spec, const std::string& next_layer_tensor,
                          const char* layers_key) {
  if (!w.has(next_layer_tensor)) return Status::Ok();
  return make_error(ErrorCode::kLoadFailed, w.checkpoint().description() + ": tensor '" + w.prefix() + next_layer_tensor +
                                                "' exists but config.json declares " + layers_key + " = " +
                                                std::to_string(spec.layers.size()));
}

Status load_token_embeddings(WeightLoader& w, const EncoderSpec& spec, int type_vocab, EncoderWeights& out) {
  FATHOM_ASSIGN_OR_RETURN(out.word, w.tensor("embeddings.word_embeddings.weight", Shape{spec.vocab, spec.hidden}));
  if (type_vocab > 0) {
    FATHOM_ASSIGN_OR_RETURN(out.token_type,
                            w.tensor("embeddings.token_type_embeddings.weight", Shape{type_vocab, spec.hidden}));
  }
  return Status::Ok();
}

}  // namespace fathom::models::encoder
