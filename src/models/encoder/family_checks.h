#pragma once
// Config and checkpoint checks that several encoder families make alike (MPNet, NomicBERT, GTE, ModernBERT);
// each message names the family's own config keys, so a family passes them in.
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "models/encoder/encoder_spec.h"
#include "models/encoder/weight_loader.h"
#include "ops/activation.h"

namespace fathom::models::encoder {

// The config.json keys of the sizes every family gives; a null key is one the family reads itself.
struct DimensionKeys {
  const char* hidden = "hidden_size";
  const char* layers = "num_hidden_layers";
  const char* heads = "num_attention_heads";
  const char* intermediate = "intermediate_size";
  const char* max_positions = "max_position_embeddings";
};
struct Dimensions {
  int layers = 0;
  int max_positions = 0;  // 0 when keys.max_positions is null
};
// Reads spec.hidden, the layer count, spec.heads, spec.intermediate, spec.vocab ("vocab_size") and the
// position table size, in that order, each a required positive int (the first bad one is the error).
Result<Dimensions> read_dimensions(const nlohmann::json& config, const std::filesystem::path& file, EncoderSpec& spec,
                                   const DimensionKeys& keys = {});
// head_dim = hidden / heads, an error naming `hidden_key` and `heads_key` when it does not divide.
Status set_head_dim(EncoderSpec& spec, const char* hidden_key, const char* heads_key, const std::filesystem::path& file);
// kUnsupported unless head_dim is even (rotary over the whole head).
Status require_even_head_dim(const EncoderSpec& spec, const std::filesystem::path& file);
// The plain MLP GELU of a Hugging Face activation name (gelu, gelu_new, gelu_pytorch_tanh, gelu_fast).
Result<ops::GeluMode> parse_gelu_mode(const std::string& name, const char* key, const std::filesystem::path& file);
// The gated MLP activation of a Hugging Face activation name (`key` is its config key, for messages).
Result<ops::GatedActivation> parse_gated_activation(const std::string& name, const char* key,
                                                    const std::filesystem::path& file);
// kLoadFailed when the checkpoint holds `next_layer_tensor` (a tensor of layer spec.layers.size()): the
// checkpoint has more layers than config.json's `layers_key` declares.
Status refuse_extra_layer(const WeightLoader& w, const EncoderSpec& spec, const std::string& next_layer_tensor,
                          const char* layers_key);
// BERT-style token embeddings: embeddings.word_embeddings.weight [vocab, hidden] and, when type_vocab > 0,
// embeddings.token_type_embeddings.weight [type_vocab, hidden].
Status load_token_embeddings(WeightLoader& w, const EncoderSpec& spec, int type_vocab, EncoderWeights& out);

}  // namespace fathom::models::encoder
