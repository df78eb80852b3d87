#include "models/gte/gte_model.h"

#include "formats/json_file.h"
#include "models/encoder/family_checks.h"
#include "models/encoder/rope.h"

namespace fathom::models::gte {
namespace {

using encoder::EncoderSpec;
using encoder::EncoderWeights;
using encoder::WeightLoader;

struct GteExtra {
  int type_vocab = 0;
  double theta = 10000.0;
  double ntk_factor = 0.0;  // 0: no scaling
};

Result<EncoderSpec> parse_config(const nlohmann::json& j, const std::filesystem::path& file, GteExtra& extra) {
  using namespace formats;
  EncoderSpec s;
  s.family = "gte";
  FATHOM_ASSIGN_OR_RETURN(const encoder::Dimensions dims, encoder::read_dimensions(j, file, s));
  const int layers = dims.layers, max_pos = dims.max_positions;
  FATHOM_ASSIGN_OR_RETURN(auto types, json_int(j, "type_vocab_size", file));
  FATHOM_ASSIGN_OR_RETURN(auto pad, json_int(j, "pad_token_id", file));
  FATHOM_ASSIGN_OR_RETURN(auto eps, json_number(j, "layer_norm_eps", file));
  FATHOM_ASSIGN_OR_RETURN(auto theta, json_number(j, "rope_theta", file));
  FATHOM_ASSIGN_OR_RETURN(auto act, json_string(j, "hidden_act", file));
  FATHOM_ASSIGN_OR_RETURN(auto pos_type, json_string(j, "position_embedding_type", file));
  FATHOM_ASSIGN_OR_RETURN(auto norm_type, json_string(j, "layer_norm_type", file));
  FATHOM_ASSIGN_OR_RETURN(auto logn, json_bool(j, "logn_attention_scale", file));
  FATHOM_ASSIGN_OR_RETURN(auto pack, json_bool(j, "pack_qkv", file));
  if (pos_type.value_or("rope") != "rope")
    return make_error(ErrorCode::kUnsupported, file.string() + ": position_embedding_type '" + *pos_type +
                                                   "' is not supported (supported: rope)");
  if (norm_type.value_or("layer_norm") != "layer_norm")
    return make_error(ErrorCode::kUnsupported, file.string() + ": layer_norm_type '" + *norm_type +
                                                   "' is not supported (supported: layer_norm)");
  if (logn.value_or(false))
    return make_error(ErrorCode::kUnsupported, file.string() + ": logn_attention_scale = true is not supported");
  if (!pack.value_or(true))
    return make_error(ErrorCode::kUnsupported, file.string() + ": pack_qkv = false is not supported");
  FATHOM_ASSIGN_OR_RETURN(s.gated, encoder::parse_gated_activation(act.value_or("gelu"), "hidden_act", file));
  FATHOM_TRY(encoder::set_head_dim(s, "hidden_size", "num_attention_heads", file));
  FATHOM_TRY(encoder::require_even_head_dim(s, file));
  extra.type_vocab = static_cast<int>(types.value_or(0));
  s.pad_id = static_cast<int32_t>(pad.value_or(0));
  if (extra.type_vocab < 0 || s.pad_id < 0)
    return make_error(ErrorCode::kLoadFailed, file.string() + ": type_vocab_size and pad_token_id must be >= 0");
  s.norm_eps = static_cast<float>(eps.value_or(1e-12));
  extra.theta = theta.value_or(10000.0);
  if (auto it = j.find("rope_scaling"); it != j.end() && !it->is_null()) {
    const auto type = it->is_object() ? it->value("type", it->value("rope_type", std::string())) : std::string();
    const auto factor = it->is_object() && it->contains("factor") && (*it)["factor"].is_number()
                            ? (*it)["factor"].get<double>()
                            : 0.0;
    if (type != "ntk" || factor <= 0.0)
      return make_error(ErrorCode::kUnsupported, file.string() + ": rope_scaling " + it->dump() +
                                                     " is not supported (supported: null, {\"type\": \"ntk\", \"factor\": > 0})");
    if (it->contains("mixed_b") && !(*it)["mixed_b"].is_null())
      return make_error(ErrorCode::kUnsupported, file.string() + ": rope_scaling.mixed_b is not supported");
    // The scaled tables replace the plain ones only when they cover more positions (factor > 1).
    extra.ntk_factor = factor > 1.0 ? factor : 0.0;
  }
  s.norm = encoder::NormPlacement::kPost;
  s.mlp = encoder::MlpKind::kGated;
  s.activate_first = false;  // up | gate: up * act(gate)
  s.position_offset = 0;
  s.position_limit = max_pos;
  s.rotary_dim = s.head_dim;
  s.layers.assign(static_cast<std::size_t>(layers), encoder::LayerSpec{});
  return s;
}

Status load_weights(WeightLoader& w, const EncoderSpec& s, const GteExtra& x, EncoderWeights& out) {
  FATHOM_TRY(w.detect_prefix("embeddings.word_embeddings.weight", {"", "new."}));
  const int64_t h = s.hidden, inter = s.intermediate;
  FATHOM_TRY(encoder::load_token_embeddings(w, s, x.type_vocab, out));
  FATHOM_ASSIGN_OR_RETURN(out.embed_norm, w.norm("embeddings.LayerNorm", h, s.norm_eps, true));
  for (std::size_t i = 0; i < s.layers.size(); ++i) {
    const std::string p = "encoder.layer." + std::to_string(i) + ".";
    encoder::LayerWeights l;
    FATHOM_ASSIGN_OR_RETURN(l.qkv, w.linear(p + "attention.qkv_proj", 3 * h, h, true));
    FATHOM_ASSIGN_OR_RETURN(l.attn_out, w.linear(p + "attention.o_proj", h, h, true));
    FATHOM_ASSIGN_OR_RETURN(l.attn_norm, w.norm(p + "attn_ln", h, s.norm_eps, true));
    FATHOM_ASSIGN_OR_RETURN(l.up, w.linear(p + "mlp.up_gate_proj", 2 * inter, h, false));
    FATHOM_ASSIGN_OR_RETURN(l.down, w.linear(p + "mlp.down_proj", h, inter, true));
    FATHOM_ASSIGN_OR_RETURN(l.mlp_norm, w.norm(p + "mlp_ln", h, s.norm_eps, true));
    out.layers.push_back(l);
  }
  FATHOM_TRY(encoder::refuse_extra_layer(w, s, "encoder.layer." + std::to_string(s.layers.size()) + ".attention.qkv_proj.weight",
                                         "num_hidden_layers"));
  const std::vector<float> freq = x.ntk_factor > 0 ? encoder::rope_inv_freq_ntk(s.rotary_dim, x.theta, x.ntk_factor)
                                                   : encoder::rope_inv_freq(s.rotary_dim, x.theta);
  FATHOM_ASSIGN_OR_RETURN(TensorView inv, w.f32_table(freq, Shape{s.rotary_dim / 2}));
  out.inv_freq.push_back(inv);
  return Status::Ok();
}

}  // namespace

encoder::EncoderFamily gte_family() {
  return encoder::make_encoder_family<GteExtra>(
      encoder::encoder_model_info("gte", {"NewModel", "NewForMaskedLM"}, {"new"}), parse_config, load_weights);
}

}  // namespace fathom::models::gte
