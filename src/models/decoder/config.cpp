#include "models/decoder/config.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "formats/json_file.h"

namespace fathom::models::decoder {
namespace {

Error bad(const std::filesystem::path& file, const std::string& what, ErrorCode code = ErrorCode::kLoadFailed) {
  return make_error(code, file.string() + ": " + what);
}

// eos_token_id as an int or a list of ints (null or absent: empty).
Result<std::vector<int>> token_list(const nlohmann::json& j, const char* key, const std::filesystem::path& file) {
  std::vector<int> out;
  if (!j.contains(key) || j[key].is_null()) return out;
  const auto& v = j[key];
  if (v.is_number_integer()) {
    out.push_back(v.get<int>());
    return out;
  }
  if (v.is_array()) {
    for (const auto& e : v) {
      if (!e.is_number_integer()) return bad(file, std::string("'") + key + "' must hold integers");
      out.push_back(e.get<int>());
    }
    return out;
  }
  return bad(file, std::string("'") + key + "' must be an integer or a list of integers");
}

Result<RopeConfig> parse_rope(const nlohmann::json& j, const std::filesystem::path& file) {
  RopeConfig r;
  // transformers >= 5 writes rope_parameters (rope_theta inside); older files rope_theta + rope_scaling.
  const nlohmann::json* params = nullptr;
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) params = &j["rope_parameters"];
  else if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) params = &j["rope_scaling"];
  FATHOM_ASSIGN_OR_RETURN(auto theta, formats::json_number(j, "rope_theta", file));
  if (theta) r.theta = *theta;
  if (!params) return r;
  const nlohmann::json& p = *params;
  FATHOM_ASSIGN_OR_RETURN(auto ptheta, formats::json_number(p, "rope_theta", file));
  if (ptheta) r.theta = *ptheta;
  FATHOM_ASSIGN_OR_RETURN(auto type, formats::json_string(p, "rope_type", file));
  if (!type) {
    FATHOM_ASSIGN_OR_RETURN(type, formats::json_string(p, "type", file));
  }
  if (type) r.type = *type;
  auto number = [&](const char* key, double& dst) -> Status {
    FATHOM_ASSIGN_OR_RETURN(auto v, formats::json_number(p, key, file));
    if (v) dst = *v;
    return Status::Ok();
  };
  FATHOM_TRY(number("factor", r.factor));
  FATHOM_TRY(number("low_freq_factor", r.low_freq_factor));
  FATHOM_TRY(number("high_freq_factor", r.high_freq_factor));
  FATHOM_TRY(number("beta_fast", r.beta_fast));
  FATHOM_TRY(number("beta_slow", r.beta_slow));
  FATHOM_TRY(number("attention_factor", r.attention_factor));
  FATHOM_TRY(number("mscale", r.mscale));
  FATHOM_TRY(number("mscale_all_dim", r.mscale_all_dim));
  FATHOM_ASSIGN_OR_RETURN(auto orig, formats::json_int(p, "original_max_position_embeddings", file));
  if (orig) r.original_max_position_embeddings = static_cast<int>(*orig);
  FATHOM_ASSIGN_OR_RETURN(auto truncate, formats::json_bool(p, "truncate", file));
  if (truncate) r.truncate = *truncate;
  if (r.type != "default" && r.type != "linear" && r.type != "llama3" && r.type != "yarn")
    return bad(file, "rope type '" + r.type + "' is not supported (default, linear, llama3, yarn)", ErrorCode::kUnsupported);
  if (r.theta <= 0 || r.factor <= 0) return bad(file, "rope_theta and the rope factor must be positive");
  return r;
}

}  // namespace

Result<DecoderConfig> parse_decoder_config(const nlohmann::json& j, const std::filesystem::path& file) {
  DecoderConfig c;
  if (!j.is_object()) return bad(file, "not a JSON object");
  FATHOM_ASSIGN_OR_RETURN(auto model_type, formats::json_string(j, "model_type", file));
  c.model_type = model_type.value_or("");
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string())
    c.architecture = j["architectures"][0].get<std::string>();
  else
    c.architecture = c.model_type;
  if (c.model_type != "qwen2" && c.model_type != "qwen3")
    return bad(file, "model_type '" + c.model_type + "' is not a decoder of the Qwen2 / Qwen3 layouts", ErrorCode::kUnsupported);
  const bool qwen3 = c.model_type == "qwen3";
  FATHOM_ASSIGN_OR_RETURN(c.hidden_size, formats::json_positive_int(j, "hidden_size", file));
  FATHOM_ASSIGN_OR_RETURN(c.num_hidden_layers, formats::json_positive_int(j, "num_hidden_layers", file));
  FATHOM_ASSIGN_OR_RETURN(c.num_attention_heads, formats::json_positive_int(j, "num_attention_heads", file));
  FATHOM_ASSIGN_OR_RETURN(c.intermediate_size, formats::json_positive_int(j, "intermediate_size", file));
  FATHOM_ASSIGN_OR_RETURN(c.vocab_size, formats::json_positive_int(j, "vocab_size", file));
  FATHOM_ASSIGN_OR_RETURN(auto kv, formats::json_int(j, "num_key_value_heads", file));
  c.num_key_value_heads = kv ? static_cast<int>(*kv) : c.num_attention_heads;
  FATHOM_ASSIGN_OR_RETURN(auto hd, formats::json_int(j, "head_dim", file));
  c.head_dim = hd && *hd > 0 ? static_cast<int>(*hd) : c.hidden_size / c.num_attention_heads;
  if (c.num_key_value_heads <= 0 || c.num_attention_heads % c.num_key_value_heads != 0)
    return bad(file, "num_attention_heads (" + std::to_string(c.num_attention_heads) +
                         ") must be a multiple of num_key_value_heads (" + std::to_string(c.num_key_value_heads) + ")");
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) return bad(file, "head_dim must be positive and even");
  FATHOM_ASSIGN_OR_RETURN(auto maxpos, formats::json_int(j, "max_position_embeddings", file));
  c.max_position_embeddings = maxpos ? static_cast<int>(*maxpos) : 32768;
  FATHOM_ASSIGN_OR_RETURN(auto eps, formats::json_number(j, "rms_norm_eps", file));
  if (eps) c.rms_norm_eps = *eps;
  FATHOM_ASSIGN_OR_RETURN(auto tie, formats::json_bool(j, "tie_word_embeddings", file));
  c.tie_word_embeddings = tie.value_or(false);
  FATHOM_ASSIGN_OR_RETURN(auto act, formats::json_string(j, "hidden_act", file));
  if (act && *act != "silu" && *act != "swish")
    return bad(file, "hidden_act '" + *act + "' is not supported (silu)", ErrorCode::kUnsupported);
  FATHOM_ASSIGN_OR_RETURN(auto bias, formats::json_bool(j, "attention_bias", file));
  c.attention_bias = qwen3 ? bias.value_or(false) : true;
  c.qk_norm = qwen3;
  FATHOM_ASSIGN_OR_RETURN(auto sliding, formats::json_bool(j, "use_sliding_window", file));
  bool any_sliding = sliding.value_or(false);
  if (j.contains("layer_types") && j["layer_types"].is_array())
    for (const auto& t : j["layer_types"])
      if (t.is_string() && t.get<std::string>() != "full_attention") any_sliding = true;
  if (any_sliding) return bad(file, "sliding-window attention layers are not supported", ErrorCode::kUnsupported);
  FATHOM_ASSIGN_OR_RETURN(c.rope, parse_rope(j, file));
  FATHOM_ASSIGN_OR_RETURN(c.eos_token_ids, token_list(j, "eos_token_id", file));
  FATHOM_ASSIGN_OR_RETURN(auto pad, formats::json_int(j, "pad_token_id", file));
  c.pad_token_id = pad ? static_cast<int>(*pad) : -1;
  return c;
}

Status read_generation_config(const std::filesystem::path& dir, DecoderConfig& config) {
  const auto path = dir / "generation_config.json";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::Ok();
  FATHOM_ASSIGN_OR_RETURN(nlohmann::json j, formats::read_json_file(path));
  FATHOM_ASSIGN_OR_RETURN(std::vector<int> eos, token_list(j, "eos_token_id", path));
  if (!eos.empty()) config.eos_token_ids = eos;
  return Status::Ok();
}

Result<RopeTables> rope_tables(const RopeConfig& rope, int head_dim, int max_position_embeddings) {
  if (head_dim <= 0 || head_dim % 2 != 0)
    return make_error(ErrorCode::kInvalidArgument, "rope_tables: head_dim must be positive and even");
  const int half = head_dim / 2;
  RopeTables t;
  t.inv_freq.resize(static_cast<std::size_t>(half));
  // base ** (2i / dim) in f32, as transformers evaluates it.
  std::vector<float> pos_freqs(static_cast<std::size_t>(half));
  for (int i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    pos_freqs[static_cast<std::size_t>(i)] = std::pow(static_cast<float>(rope.theta), exponent);
    t.inv_freq[static_cast<std::size_t>(i)] = 1.0f / pos_freqs[static_cast<std::size_t>(i)];
  }
  const float factor = static_cast<float>(rope.factor);
  const double orig = rope.original_max_position_embeddings > 0 ? rope.original_max_position_embeddings
                                                                 : max_position_embeddings;
  if (rope.type == "linear") {
    for (float& f : t.inv_freq) f /= factor;
  } else if (rope.type == "llama3") {
    const double low_wavelen = orig / rope.low_freq_factor, high_wavelen = orig / rope.high_freq_factor;
    for (float& f : t.inv_freq) {
      const double wavelen = 2.0 * std::numbers::pi / f;
      if (wavelen > low_wavelen) {
        f = f / factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (orig / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor);
        f = static_cast<float>((1.0 - smooth) * f / factor + smooth * f);
      }
    }
  } else if (rope.type == "yarn") {
    auto get_mscale = [](double scale, double m) { return scale <= 1.0 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; };
    double attention = rope.attention_factor;
    if (attention <= 0.0)
      attention = rope.mscale != 0.0 && rope.mscale_all_dim != 0.0
                      ? get_mscale(rope.factor, rope.mscale) / get_mscale(rope.factor, rope.mscale_all_dim)
                      : get_mscale(rope.factor, 1.0);
    auto correction_dim = [&](double rotations) {
      return (head_dim * std::log(orig / (rotations * 2.0 * std::numbers::pi))) / (2.0 * std::log(rope.theta));
    };
    double low = correction_dim(rope.beta_fast), high = correction_dim(rope.beta_slow);
    if (rope.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, static_cast<double>(head_dim - 1));
    if (low == high) high += 0.001;
    for (int i = 0; i < half; ++i) {
      const float ramp = std::clamp(static_cast<float>((i - low) / (high - low)), 0.0f, 1.0f);
      const float extrapolation = 1.0f - ramp;
      const float p = pos_freqs[static_cast<std::size_t>(i)];
      t.inv_freq[static_cast<std::size_t>(i)] = (1.0f / (factor * p)) * (1.0f - extrapolation) + (1.0f / p) * extrapolation;
    }
    t.attention_scaling = static_cast<float>(attention);
  }
  return t;
}

}  // namespace fathom::models::decoder
