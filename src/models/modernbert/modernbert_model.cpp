#include "models/modernbert/modernbert_model.h"

#include "formats/json_file.h"
#include "models/encoder/family_checks.h"
#include "models/encoder/rope.h"

namespace fathom::models::modernbert {
namespace {

using encoder::EncoderSpec;
using encoder::EncoderWeights;
using encoder::WeightLoader;

constexpr int kGlobalRope = 0, kLocalRope = 1;  // EncoderWeights::inv_freq indices

struct ModernExtra {
  bool attention_bias = false, mlp_bias = false, norm_bias = false;
  bool classifier_bias = false;  // head.dense.bias (classifier heads only)
  double global_theta = 160000.0, local_theta = 10000.0;
};

// A rope_parameters entry: {"rope_type": "default", "rope_theta": x}.
Result<double> rope_theta_of(const nlohmann::json& params, const char* kind, const std::filesystem::path& file,
                             double fallback) {
  auto it = params.find(kind);
  if (it == params.end() || it->is_null()) return fallback;
  if (!it->is_object())
    return make_error(ErrorCode::kLoadFailed, file.string() + ": rope_parameters." + kind + " should be an object");
  const std::string type = it->value("rope_type", std::string("default"));
  if (type != "default")
    return make_error(ErrorCode::kUnsupported, file.string() + ": rope_parameters." + kind + ".rope_type '" + type +
                                                   "' is not supported (supported: default)");
  auto theta = it->find("rope_theta");
  if (theta == it->end()) return fallback;
  if (!theta->is_number())
    return make_error(ErrorCode::kLoadFailed, file.string() + ": rope_parameters." + kind + ".rope_theta should be a number");
  return theta->get<double>();
}

Result<EncoderSpec> parse_config(const nlohmann::json& j, const std::filesystem::path& file, ModernExtra& x) {
  using namespace formats;
  EncoderSpec s;
  s.family = "modernbert";
  FATHOM_ASSIGN_OR_RETURN(const encoder::Dimensions dims, encoder::read_dimensions(j, file, s));
  const int layers = dims.layers, max_pos = dims.max_positions;
  FATHOM_ASSIGN_OR_RETURN(auto pad, json_int(j, "pad_token_id", file));
  FATHOM_ASSIGN_OR_RETURN(auto eps, json_number(j, "norm_eps", file));
  FATHOM_ASSIGN_OR_RETURN(auto window, json_int(j, "local_attention", file));
  FATHOM_ASSIGN_OR_RETURN(auto act, json_string(j, "hidden_activation", file));
  FATHOM_ASSIGN_OR_RETURN(auto ab, json_bool(j, "attention_bias", file));
  FATHOM_ASSIGN_OR_RETURN(auto mb, json_bool(j, "mlp_bias", file));
  FATHOM_ASSIGN_OR_RETURN(auto nb, json_bool(j, "norm_bias", file));
  FATHOM_ASSIGN_OR_RETURN(auto every, json_int(j, "global_attn_every_n_layers", file));
  FATHOM_ASSIGN_OR_RETURN(auto gtheta, json_number(j, "global_rope_theta", file));
  FATHOM_ASSIGN_OR_RETURN(auto ltheta, json_number(j, "local_rope_theta", file));
  FATHOM_TRY(encoder::set_head_dim(s, "hidden_size", "num_attention_heads", file));
  FATHOM_TRY(encoder::require_even_head_dim(s, file));
  FATHOM_ASSIGN_OR_RETURN(s.gated, encoder::parse_gated_activation(act.value_or("gelu"), "hidden_activation", file));
  x.attention_bias = ab.value_or(false);
  x.mlp_bias = mb.value_or(false);
  x.norm_bias = nb.value_or(false);
  s.norm_eps = static_cast<float>(eps.value_or(1e-5));
  s.pad_id = static_cast<int32_t>(pad.value_or(0));
  if (s.pad_id < 0) return make_error(ErrorCode::kLoadFailed, file.string() + ": pad_token_id must be >= 0");
  const int local = static_cast<int>(window.value_or(128));
  if (local < 0) return make_error(ErrorCode::kLoadFailed, file.string() + ": local_attention must be >= 0");

  // Thetas: rope_parameters (new layout), else global_rope_theta / local_rope_theta.
  x.global_theta = gtheta.value_or(160000.0);
  x.local_theta = ltheta.value_or(10000.0);
  if (auto rp = j.find("rope_parameters"); rp != j.end() && !rp->is_null()) {
    if (!rp->is_object())
      return make_error(ErrorCode::kLoadFailed, file.string() + ": rope_parameters should be an object");
    FATHOM_ASSIGN_OR_RETURN(x.global_theta, rope_theta_of(*rp, "full_attention", file, x.global_theta));
    FATHOM_ASSIGN_OR_RETURN(x.local_theta, rope_theta_of(*rp, "sliding_attention", file, x.local_theta));
  }
  // Layer kinds: layer_types (new layout), else every n-th layer global.
  std::vector<bool> global(static_cast<std::size_t>(layers));
  if (auto lt = j.find("layer_types"); lt != j.end() && !lt->is_null()) {
    if (!lt->is_array() || static_cast<int>(lt->size()) != layers)
      return make_error(ErrorCode::kLoadFailed, file.string() + ": layer_types should list num_hidden_layers = " +
                                                    std::to_string(layers) + " entries");
    for (int i = 0; i < layers; ++i) {
      const auto& t = (*lt)[static_cast<std::size_t>(i)];
      if (t == "full_attention") global[static_cast<std::size_t>(i)] = true;
      else if (t == "sliding_attention") global[static_cast<std::size_t>(i)] = false;
      else
        return make_error(ErrorCode::kUnsupported, file.string() + ": layer_types[" + std::to_string(i) + "] = " + t.dump() +
                                                       " is not supported (supported: full_attention, sliding_attention)");
    }
  } else {
    const int n = static_cast<int>(every.value_or(3));
    if (n <= 0) return make_error(ErrorCode::kLoadFailed, file.string() + ": global_attn_every_n_layers must be positive");
    for (int i = 0; i < layers; ++i) global[static_cast<std::size_t>(i)] = i % n == 0;
  }
  s.norm = encoder::NormPlacement::kPre;
  s.mlp = encoder::MlpKind::kGated;
  s.activate_first = true;  // input | gate: act(input) * gate
  s.position_offset = 0;
  s.position_limit = max_pos;
  s.rotary_dim = s.head_dim;
  for (int i = 0; i < layers; ++i) {
    encoder::LayerSpec l;
    const bool g = global[static_cast<std::size_t>(i)];
    l.rope = g ? kGlobalRope : kLocalRope;
    l.window_half = g ? -1 : local / 2;
    s.layers.push_back(l);
  }
  return s;
}

Status load_weights(WeightLoader& w, const EncoderSpec& s, const ModernExtra& x, EncoderWeights& out) {
  FATHOM_TRY(w.detect_prefix("embeddings.tok_embeddings.weight", {"", "model."}));
  const int64_t h = s.hidden, inter = s.intermediate;
  FATHOM_ASSIGN_OR_RETURN(out.word, w.tensor("embeddings.tok_embeddings.weight", Shape{s.vocab, h}));
  FATHOM_ASSIGN_OR_RETURN(out.embed_norm, w.norm("embeddings.norm", h, s.norm_eps, x.norm_bias));
  for (std::size_t i = 0; i < s.layers.size(); ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    encoder::LayerWeights l;
    if (i > 0 || w.has(p + "attn_norm.weight")) {
      FATHOM_ASSIGN_OR_RETURN(l.attn_norm, w.norm(p + "attn_norm", h, s.norm_eps, x.norm_bias));
    }
    FATHOM_ASSIGN_OR_RETURN(l.qkv, w.linear(p + "attn.Wqkv", 3 * h, h, x.attention_bias));
    FATHOM_ASSIGN_OR_RETURN(l.attn_out, w.linear(p + "attn.Wo", h, h, x.attention_bias));
    FATHOM_ASSIGN_OR_RETURN(l.mlp_norm, w.norm(p + "mlp_norm", h, s.norm_eps, x.norm_bias));
    FATHOM_ASSIGN_OR_RETURN(l.up, w.linear(p + "mlp.Wi", 2 * inter, h, x.mlp_bias));
    FATHOM_ASSIGN_OR_RETURN(l.down, w.linear(p + "mlp.Wo", h, inter, x.mlp_bias));
    out.layers.push_back(l);
  }
  FATHOM_TRY(encoder::refuse_extra_layer(w, s, "layers." + std::to_string(s.layers.size()) + ".attn.Wqkv.weight",
                                         "num_hidden_layers"));
  FATHOM_ASSIGN_OR_RETURN(out.final_norm, w.norm("final_norm", h, s.norm_eps, x.norm_bias));
  for (double theta : {x.global_theta, x.local_theta}) {
    FATHOM_ASSIGN_OR_RETURN(TensorView inv, w.f32_table(encoder::rope_inv_freq(s.rotary_dim, theta), Shape{s.rotary_dim / 2}));
    out.inv_freq.push_back(inv);
  }
  return Status::Ok();
}

// ModernBertForSequenceClassification: the encoder plus the head of config.json's classifier_* keys.
Result<EncoderSpec> parse_classifier_config(const nlohmann::json& j, const std::filesystem::path& file, ModernExtra& x) {
  using namespace formats;
  FATHOM_ASSIGN_OR_RETURN(EncoderSpec s, parse_config(j, file, x));
  encoder::ClassifierHeadSpec head;
  FATHOM_ASSIGN_OR_RETURN(head.labels, parse_classifier_labels(j, file));
  FATHOM_ASSIGN_OR_RETURN(auto pooling, json_string(j, "classifier_pooling", file));
  FATHOM_ASSIGN_OR_RETURN(auto act, json_string(j, "classifier_activation", file));
  FATHOM_ASSIGN_OR_RETURN(auto bias, json_bool(j, "classifier_bias", file));
  const std::string pool = pooling.value_or("cls");  // transformers' ModernBertConfig defaults
  if (pool == "cls") head.pooling = ops::PoolingMode::kCls;
  else if (pool == "mean") head.pooling = ops::PoolingMode::kMean;
  else
    return make_error(ErrorCode::kUnsupported, file.string() + ": classifier_pooling '" + pool +
                                                   "' is not supported (supported: cls, mean)");
  FATHOM_ASSIGN_OR_RETURN(head.gelu, encoder::parse_gelu_mode(act.value_or("gelu"), "classifier_activation", file));
  x.classifier_bias = bias.value_or(false);
  s.classifier = std::move(head);
  return s;
}

// The encoder under "model." (or ""), then head.dense -> head.norm -> classifier at the checkpoint's root.
Status load_classifier_weights(WeightLoader& w, const EncoderSpec& s, const ModernExtra& x, EncoderWeights& out) {
  FATHOM_TRY(load_weights(w, s, x, out));
  const int64_t h = s.hidden, labels = static_cast<int64_t>(s.classifier->labels.labels.size());
  w.set_prefix("");
  encoder::ClassifierHeadWeights& c = out.classifier;
  FATHOM_ASSIGN_OR_RETURN(c.dense, w.linear("head.dense", h, h, x.classifier_bias));
  FATHOM_ASSIGN_OR_RETURN(c.norm, w.norm("head.norm", h, s.norm_eps, x.norm_bias));
  FATHOM_ASSIGN_OR_RETURN(c.out, w.linear("classifier", labels, h, true));
  return Status::Ok();
}

}  // namespace

encoder::EncoderFamily modernbert_classifier_family() {
  return encoder::make_encoder_family<ModernExtra>(
      encoder::encoder_model_info("modernbert-classifier", {"ModernBertForSequenceClassification"}, {},
                                  {Task::kScore, Task::kClassify}),
      parse_classifier_config, load_classifier_weights);
}

encoder::EncoderFamily modernbert_family() {
  return encoder::make_encoder_family<ModernExtra>(
      encoder::encoder_model_info("modernbert", {"ModernBertModel", "ModernBertForMaskedLM"}, {"modernbert"}),
      parse_config, load_weights);
}

}  // namespace fathom::models::modernbert
