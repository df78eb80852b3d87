#include "models/mpnet/mpnet_model.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "formats/json_file.h"
#include "models/encoder/family_checks.h"
#include "ops/convert.h"
#include "runtime/exec_context.h"

namespace fathom::models::mpnet {
namespace {

using encoder::EncoderSpec;
using encoder::EncoderWeights;
using encoder::WeightLoader;

struct MpnetExtra {
  int num_buckets = 32;
};

Result<EncoderSpec> parse_config(const nlohmann::json& j, const std::filesystem::path& file, MpnetExtra& extra) {
  using namespace formats;
  EncoderSpec s;
  s.family = "mpnet";
  FATHOM_ASSIGN_OR_RETURN(const encoder::Dimensions dims, encoder::read_dimensions(j, file, s));
  const int layers = dims.layers, max_pos = dims.max_positions;
  FATHOM_ASSIGN_OR_RETURN(auto pad, json_int(j, "pad_token_id", file));
  FATHOM_ASSIGN_OR_RETURN(auto eps, json_number(j, "layer_norm_eps", file));
  FATHOM_ASSIGN_OR_RETURN(auto buckets, json_int(j, "relative_attention_num_buckets", file));
  FATHOM_ASSIGN_OR_RETURN(auto act, json_string(j, "hidden_act", file));
  FATHOM_TRY(encoder::set_head_dim(s, "hidden_size", "num_attention_heads", file));
  s.pad_id = static_cast<int32_t>(pad.value_or(1));
  if (s.pad_id < 0) return make_error(ErrorCode::kLoadFailed, file.string() + ": pad_token_id must be >= 0");
  s.norm_eps = static_cast<float>(eps.value_or(1e-12));
  extra.num_buckets = static_cast<int>(buckets.value_or(32));
  if (extra.num_buckets < 4 || extra.num_buckets % 4 != 0)
    return make_error(ErrorCode::kLoadFailed, file.string() + ": relative_attention_num_buckets " +
                                                  std::to_string(extra.num_buckets) + " should be a positive multiple of 4");
  FATHOM_ASSIGN_OR_RETURN(s.gelu, encoder::parse_gelu_mode(act.value_or("gelu"), "hidden_act", file));
  s.norm = encoder::NormPlacement::kPost;
  s.mlp = encoder::MlpKind::kPlain;
  s.position_offset = s.pad_id + 1;
  s.position_limit = max_pos - s.position_offset;
  if (s.position_limit < 1)
    return make_error(ErrorCode::kLoadFailed, file.string() + ": max_position_embeddings " + std::to_string(max_pos) +
                                                  " leaves no positions after the offset " + std::to_string(s.position_offset));
  s.relative_bias = true;
  s.layers.assign(static_cast<std::size_t>(layers), encoder::LayerSpec{});
  return s;
}

Status load_weights(WeightLoader& w, const EncoderSpec& s, const MpnetExtra& extra, EncoderWeights& out) {
  FATHOM_TRY(w.detect_prefix("embeddings.word_embeddings.weight", {"", "mpnet."}));
  const int64_t h = s.hidden, inter = s.intermediate;
  FATHOM_TRY(encoder::load_token_embeddings(w, s, 0, out));
  FATHOM_ASSIGN_OR_RETURN(out.position, w.tensor("embeddings.position_embeddings.weight",
                                                 Shape{s.position_limit + s.position_offset, h}));
  FATHOM_ASSIGN_OR_RETURN(out.embed_norm, w.norm("embeddings.LayerNorm", h, s.norm_eps, true));
  for (std::size_t i = 0; i < s.layers.size(); ++i) {
    const std::string p = "encoder.layer." + std::to_string(i) + ".";
    encoder::LayerWeights l;
    std::vector<std::string> wn, bn;
    for (const char* part : {"q", "k", "v"}) {
      wn.push_back(p + "attention.attn." + part + ".weight");
      bn.push_back(p + "attention.attn." + part + ".bias");
    }
    FATHOM_ASSIGN_OR_RETURN(l.qkv.weight, w.concat(wn, Shape{h, h}));
    FATHOM_ASSIGN_OR_RETURN(l.qkv.bias, w.concat(bn, Shape{h}));
    FATHOM_ASSIGN_OR_RETURN(l.attn_out, w.linear(p + "attention.attn.o", h, h, true));
    FATHOM_ASSIGN_OR_RETURN(l.attn_norm, w.norm(p + "attention.LayerNorm", h, s.norm_eps, true));
    FATHOM_ASSIGN_OR_RETURN(l.up, w.linear(p + "intermediate.dense", inter, h, true));
    FATHOM_ASSIGN_OR_RETURN(l.down, w.linear(p + "output.dense", h, inter, true));
    FATHOM_ASSIGN_OR_RETURN(l.mlp_norm, w.norm(p + "output.LayerNorm", h, s.norm_eps, true));
    out.layers.push_back(l);
  }
  FATHOM_TRY(encoder::refuse_extra_layer(w, s, "encoder.layer." + std::to_string(s.layers.size()) + ".output.dense.weight",
                                         "num_hidden_layers"));
  // The bias table, resolved per distance -(span-1) .. span-1 into f32 [heads, 2 span - 1].
  const std::string name = w.prefix() + "encoder.relative_attention_bias.weight";
  const formats::TensorInfo* info = w.checkpoint().find(name);
  if (!info)
    return make_error(ErrorCode::kLoadFailed, w.checkpoint().description() + ": tensor '" + name + "' is missing");
  if (info->shape.size() != 2 || info->shape[0] != extra.num_buckets || info->shape[1] != s.heads || !info->dtype ||
      !is_float(*info->dtype))
    return make_error(ErrorCode::kLoadFailed, w.checkpoint().file_of(name).string() + ": tensor '" + name + "' has shape " +
                                                  info->shape_string() + " (" + info->dtype_name + "), expected float [" +
                                                  std::to_string(extra.num_buckets) + ", " + std::to_string(s.heads) + "]");
  std::vector<float> table(static_cast<std::size_t>(info->numel()));
  CpuExecContext cpu;
  FATHOM_TRY(ops::convert(cpu.ctx(), TensorView(info->data, *info->dtype, Shape{info->numel()}),
                          TensorView(table.data(), DType::kF32, Shape{info->numel()})));
  const int span = s.position_limit;
  std::vector<float> by_distance(static_cast<std::size_t>(s.heads) * (2 * span - 1));
  for (int d = -(span - 1); d <= span - 1; ++d) {
    const int b = relative_bucket(d, extra.num_buckets);
    for (int hh = 0; hh < s.heads; ++hh)
      by_distance[static_cast<std::size_t>(hh) * (2 * span - 1) + (d + span - 1)] =
          table[static_cast<std::size_t>(b) * s.heads + hh];
  }
  FATHOM_ASSIGN_OR_RETURN(out.distance_bias, w.f32_table(by_distance, Shape{s.heads, 2 * span - 1}));
  return Status::Ok();
}

}  // namespace

int relative_bucket(int relative, int num_buckets, int max_distance) {
  int ret = 0;
  int n = -relative;
  num_buckets /= 2;
  if (n < 0) ret += num_buckets;
  n = std::abs(n);
  const int max_exact = num_buckets / 2;
  if (n < max_exact) return ret + n;
  const float scaled = std::log(static_cast<float>(n) / static_cast<float>(max_exact)) /
                       static_cast<float>(std::log(static_cast<double>(max_distance) / max_exact)) *
                       static_cast<float>(num_buckets - max_exact);
  const int large = max_exact + static_cast<int>(scaled);
  return ret + std::min(large, num_buckets - 1);
}

encoder::EncoderFamily mpnet_family() {
  return encoder::make_encoder_family<MpnetExtra>(
      encoder::encoder_model_info("mpnet", {"MPNetModel", "MPNetForMaskedLM"}, {"mpnet"}), parse_config, load_weights);
}

}  // namespace fathom::models::mpnet
