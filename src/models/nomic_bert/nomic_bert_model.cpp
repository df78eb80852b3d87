#include "models/nomic_bert/nomic_bert_model.h"

#include "formats/json_file.h"
#include "models/encoder/family_checks.h"
#include "models/encoder/rope.h"

namespace fathom::models::nomic_bert {
namespace {

using encoder::EncoderSpec;
using encoder::EncoderWeights;
using encoder::WeightLoader;

struct NomicExtra {
  bool qkv_bias = false, fc1_bias = false, fc2_bias = false;
  int type_vocab = 0;
  double rotary_base = 10000.0;
};

// A boolean option fathom does not implement: an error when it is true.
Status refuse_true(const nlohmann::json& j, const std::filesystem::path& file, const char* key) {
  FATHOM_ASSIGN_OR_RETURN(auto v, formats::json_bool(j, key, file));
  if (v.value_or(false))
    return make_error(ErrorCode::kUnsupported, file.string() + ": " + key + " = true is not supported by fathom's NomicBERT");
  return Status::Ok();
}

Result<EncoderSpec> parse_config(const nlohmann::json& j, const std::filesystem::path& file, NomicExtra& extra) {
  using namespace formats;
  EncoderSpec s;
  s.family = "nomic-bert";
  const encoder::DimensionKeys keys{.hidden = "n_embd", .layers = "n_layer", .heads = "n_head",
                                    .intermediate = nullptr, .max_positions = nullptr};
  FATHOM_ASSIGN_OR_RETURN(const encoder::Dimensions dims, encoder::read_dimensions(j, file, s, keys));
  const int layers = dims.layers;
  int inner = 0;
  FATHOM_ASSIGN_OR_RETURN(auto inner_opt, json_int(j, "n_inner", file));
  FATHOM_ASSIGN_OR_RETURN(auto positions, json_int(j, "n_positions", file));
  FATHOM_ASSIGN_OR_RETURN(auto eps, json_number(j, "layer_norm_epsilon", file));
  FATHOM_ASSIGN_OR_RETURN(auto types, json_int(j, "type_vocab_size", file));
  FATHOM_ASSIGN_OR_RETURN(auto pad, json_int(j, "pad_token_id", file));
  FATHOM_ASSIGN_OR_RETURN(auto fraction, json_number(j, "rotary_emb_fraction", file));
  FATHOM_ASSIGN_OR_RETURN(auto base, json_number(j, "rotary_emb_base", file));
  FATHOM_ASSIGN_OR_RETURN(auto act, json_string(j, "activation_function", file));
  for (const char* key : {"prenorm", "parallel_block", "causal", "use_rms_norm", "rotary_emb_interleaved"})
    FATHOM_TRY(refuse_true(j, file, key));
  if (auto it = j.find("rotary_scaling_factor"); it != j.end() && !it->is_null())
    return make_error(ErrorCode::kUnsupported, file.string() + ": rotary_scaling_factor " + it->dump() +
                                                   " (dynamic NTK rotary) is not supported; fathom supports null");
  const std::string a = act.value_or("swiglu");
  if (a != "swiglu")
    return make_error(ErrorCode::kUnsupported,
                      file.string() + ": activation_function '" + a + "' is not supported (supported: swiglu)");
  FATHOM_TRY(encoder::set_head_dim(s, "n_embd", "n_head", file));
  inner = static_cast<int>(inner_opt.value_or(4 * s.hidden));
  if (inner <= 0) return make_error(ErrorCode::kLoadFailed, file.string() + ": n_inner must be positive");
  s.intermediate = (inner + 255) / 256 * 256;  // the gated MLP rounds its width up to a multiple of 256
  s.norm_eps = static_cast<float>(eps.value_or(1e-12));
  extra.type_vocab = static_cast<int>(types.value_or(2));
  s.pad_id = static_cast<int32_t>(pad.value_or(0));
  if (extra.type_vocab < 0 || s.pad_id < 0)
    return make_error(ErrorCode::kLoadFailed, file.string() + ": type_vocab_size and pad_token_id must be >= 0");
  const double f = fraction.value_or(1.0);
  s.rotary_dim = static_cast<int>(s.head_dim * f);
  if (s.rotary_dim < 2 || s.rotary_dim % 2 != 0 || s.rotary_dim > s.head_dim)
    return make_error(ErrorCode::kUnsupported, file.string() + ": rotary_emb_fraction " + std::to_string(f) +
                                                   " gives " + std::to_string(s.rotary_dim) + " rotary dims of " +
                                                   std::to_string(s.head_dim) + " (need an even count >= 2)");
  extra.rotary_base = base.value_or(10000.0);
  FATHOM_ASSIGN_OR_RETURN(auto qb, json_bool(j, "qkv_proj_bias", file));
  FATHOM_ASSIGN_OR_RETURN(auto f1, json_bool(j, "mlp_fc1_bias", file));
  FATHOM_ASSIGN_OR_RETURN(auto f2, json_bool(j, "mlp_fc2_bias", file));
  extra.qkv_bias = qb.value_or(true);
  extra.fc1_bias = f1.value_or(true);
  extra.fc2_bias = f2.value_or(true);
  s.norm = encoder::NormPlacement::kPost;
  s.mlp = encoder::MlpKind::kGated;
  s.gated = ops::GatedActivation::kSilu;
  s.activate_first = false;  // up = fc11 | fc12: fc11(x) * silu(fc12(x))
  s.position_offset = 0;
  s.position_limit = static_cast<int>(positions.value_or(2048));
  if (s.position_limit < 1) return make_error(ErrorCode::kLoadFailed, file.string() + ": n_positions must be positive");
  s.layers.assign(static_cast<std::size_t>(layers), encoder::LayerSpec{});
  return s;
}

Status load_weights(WeightLoader& w, const EncoderSpec& s, const NomicExtra& x, EncoderWeights& out) {
  FATHOM_TRY(w.detect_prefix("embeddings.word_embeddings.weight", {"", "bert."}));
  const int64_t h = s.hidden, inter = s.intermediate;
  FATHOM_TRY(encoder::load_token_embeddings(w, s, x.type_vocab, out));
  FATHOM_ASSIGN_OR_RETURN(out.embed_norm, w.norm("emb_ln", h, s.norm_eps, true));
  for (std::size_t i = 0; i < s.layers.size(); ++i) {
    const std::string p = "encoder.layers." + std::to_string(i) + ".";
    encoder::LayerWeights l;
    FATHOM_ASSIGN_OR_RETURN(l.qkv, w.linear(p + "attn.Wqkv", 3 * h, h, x.qkv_bias));
    FATHOM_ASSIGN_OR_RETURN(l.attn_out, w.linear(p + "attn.out_proj", h, h, x.qkv_bias));
    FATHOM_ASSIGN_OR_RETURN(l.attn_norm, w.norm(p + "norm1", h, s.norm_eps, true));
    FATHOM_ASSIGN_OR_RETURN(l.up.weight, w.concat({p + "mlp.fc11.weight", p + "mlp.fc12.weight"}, Shape{inter, h}));
    if (x.fc1_bias) {
      FATHOM_ASSIGN_OR_RETURN(l.up.bias, w.concat({p + "mlp.fc11.bias", p + "mlp.fc12.bias"}, Shape{inter}));
    }
    FATHOM_ASSIGN_OR_RETURN(l.down, w.linear(p + "mlp.fc2", h, inter, x.fc2_bias));
    FATHOM_ASSIGN_OR_RETURN(l.mlp_norm, w.norm(p + "norm2", h, s.norm_eps, true));
    out.layers.push_back(l);
  }
  FATHOM_TRY(encoder::refuse_extra_layer(w, s, "encoder.layers." + std::to_string(s.layers.size()) + ".attn.Wqkv.weight",
                                         "n_layer"));
  FATHOM_ASSIGN_OR_RETURN(TensorView inv, w.f32_table(encoder::rope_inv_freq(s.rotary_dim, x.rotary_base),
                                                      Shape{s.rotary_dim / 2}));
  out.inv_freq.push_back(inv);
  return Status::Ok();
}

}  // namespace

encoder::EncoderFamily nomic_bert_family() {
  return encoder::make_encoder_family<NomicExtra>(
      encoder::encoder_model_info("nomic-bert", {"NomicBertModel"}, {"nomic_bert"}), parse_config, load_weights);
}

}  // namespace fathom::models::nomic_bert
