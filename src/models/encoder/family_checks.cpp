#include "models/encoder/family_checks.h"

namespace fathom::models::encoder {

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

}  // namespace fathom::models::encoder
