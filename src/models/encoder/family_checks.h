#pragma once
// Config and checkpoint checks that several encoder families make alike (MPNet, NomicBERT, GTE, ModernBERT);
// each message names the family's own config keys, so a family passes them in.
#include <filesystem>
#include <string>

#include "base/error.h"
#include "models/encoder/encoder_spec.h"
#include "models/encoder/weight_loader.h"
#include "ops/activation.h"

namespace fathom::models::encoder {

// head_dim = hidden / heads, an error naming `hidden_key` and `heads_key` when it does not divide.
Status set_head_dim(EncoderSpec& spec, const char* hidden_key, const char* heads_key, const std::filesystem::path& file);
// kUnsupported unless head_dim is even (rotary over the whole head).
Status require_even_head_dim(const EncoderSpec& spec, const std::filesystem::path& file);
// The gated MLP activation of a Hugging Face activation name (`key` is its config key, for messages).
Result<ops::GatedActivation> parse_gated_activation(const std::string& name, const char* key,
                                                    const std::filesystem::path& file);
// kLoadFailed when the checkpoint holds `next_layer_tensor` (a tensor of layer spec.layers.size()): the
// checkpoint has more layers than config.json's `layers_key` declares.
Status refuse_extra_layer(const WeightLoader& w, const EncoderSpec& spec, const std::string& next_layer_tensor,
                          const char* layers_key);

}  // namespace fathom::models::encoder
