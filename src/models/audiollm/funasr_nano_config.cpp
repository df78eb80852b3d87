#include "models/audiollm/funasr_nano_config.h"

#include "formats/json_file.h"

namespace fathom::models::audiollm {
namespace {

bool contains_once(const std::string& s, const std::string& part) {
  const auto at = s.find(part);
  return at != std::string::npos && s.find(part, at + 1) == std::string::npos;
}

}  // namespace

Result<FunAsrNanoConfig> parse_funasr_nano_config(const nlohmann::json& j, const std::filesystem::path& dir) {
  const auto file = dir / "config.json";
  const std::string origin = file.string();
  const auto bad = [&](const std::string& what) { return make_error(ErrorCode::kLoadFailed, origin + ": " + what); };
  const auto unsupported = [&](const std::string& key, const std::string& value, const std::string& supported) {
    return make_error(ErrorCode::kUnsupported, origin + ": " + key + " '" + value + "' is not implemented by fathom (supported: " +
                                                   supported + ")");
  };
  const auto component = [&](const char* key, const char* supported) -> Result<std::string> {
    FATHOM_ASSIGN_OR_RETURN(auto v, formats::json_string(j, key, file));
    if (!v) return bad(std::string("missing '") + key + "' (expected \"" + supported + "\")");
    return *v;
  };
  const auto object = [&](const char* key) -> Result<nlohmann::json> {
    if (!j.contains(key) || !j[key].is_object()) return bad(std::string("missing object '") + key + "'");
    return j[key];
  };
  FunAsrNanoConfig c;
  FATHOM_ASSIGN_OR_RETURN(auto frontend, component("frontend", "WavFrontend"));
  if (frontend != "WavFrontend") return unsupported("frontend", frontend, "WavFrontend");
  FATHOM_ASSIGN_OR_RETURN(auto encoder, component("audio_encoder", "SenseVoiceEncoderSmall"));
  if (encoder != "SenseVoiceEncoderSmall") return unsupported("audio_encoder", encoder, "SenseVoiceEncoderSmall");
  FATHOM_ASSIGN_OR_RETURN(auto adaptor, component("audio_adaptor", "Transformer"));
  if (adaptor != "Transformer") return unsupported("audio_adaptor", adaptor, "Transformer");
  FATHOM_ASSIGN_OR_RETURN(c.llm_architecture, component("llm", "Qwen3ForCausalLM"));
  if (c.llm_architecture != "Qwen3ForCausalLM" && c.llm_architecture != "Qwen2ForCausalLM")
    return unsupported("llm", c.llm_architecture, "Qwen3ForCausalLM, Qwen2ForCausalLM");

  FATHOM_ASSIGN_OR_RETURN(auto fc, object("frontend_conf"));
  FATHOM_ASSIGN_OR_RETURN(auto fs, formats::json_int(fc, "fs", file));
  if (fs) c.fbank.sample_rate = static_cast<int>(*fs);
  if (c.fbank.sample_rate != 16000) return bad("frontend_conf.fs must be 16000 (fathom decodes audio to 16 kHz)");
  FATHOM_ASSIGN_OR_RETURN(auto window, formats::json_string(fc, "window", file));
  c.fbank.window = window.value_or("hamming");
  FATHOM_ASSIGN_OR_RETURN(auto mels, formats::json_int(fc, "n_mels", file));
  if (mels) c.fbank.num_mel_bins = static_cast<int>(*mels);
  FATHOM_ASSIGN_OR_RETURN(auto flen, formats::json_number(fc, "frame_length", file));
  if (flen) c.fbank.frame_length_ms = *flen;
  FATHOM_ASSIGN_OR_RETURN(auto fshift, formats::json_number(fc, "frame_shift", file));
  if (fshift) c.fbank.frame_shift_ms = *fshift;
  FATHOM_ASSIGN_OR_RETURN(auto dither, formats::json_number(fc, "dither", file));
  if (dither && *dither != 0.0)
    return make_error(ErrorCode::kUnsupported, origin + ": frontend_conf.dither must be 0 (inference adds no noise)");
  FATHOM_ASSIGN_OR_RETURN(auto m, formats::json_int(fc, "lfr_m", file));
  FATHOM_ASSIGN_OR_RETURN(auto n, formats::json_int(fc, "lfr_n", file));
  if (m) c.lfr_m = static_cast<int>(*m);
  if (n) c.lfr_n = static_cast<int>(*n);
  if (c.lfr_m < 1 || c.lfr_n < 1) return bad("frontend_conf.lfr_m and lfr_n must be >= 1");
  FATHOM_ASSIGN_OR_RETURN(auto cmvn, formats::json_string(fc, "cmvn_file", file));
  if (cmvn) c.cmvn_file = *cmvn;

  FATHOM_ASSIGN_OR_RETURN(auto ec, object("audio_encoder_conf"));
  FATHOM_ASSIGN_OR_RETURN(c.encoder, sensevoice::parse_sensevoice_encoder_config(ec, origin));
  if (c.encoder.input_size != c.fbank.num_mel_bins * c.lfr_m)
    return bad("audio_encoder_conf.input_size " + std::to_string(c.encoder.input_size) + " is not n_mels x lfr_m = " +
               std::to_string(c.fbank.num_mel_bins * c.lfr_m));
  FATHOM_ASSIGN_OR_RETURN(auto ac, object("audio_adaptor_conf"));
  FATHOM_ASSIGN_OR_RETURN(c.adaptor, parse_audio_adaptor_config(ac, origin));
  if (c.adaptor.encoder_dim != c.encoder.output_size)
    return bad("audio_adaptor_conf.encoder_dim " + std::to_string(c.adaptor.encoder_dim) +
               " differs from audio_encoder_conf.output_size " + std::to_string(c.encoder.output_size));

  FATHOM_ASSIGN_OR_RETURN(auto lc, object("llm_conf"));
  FATHOM_ASSIGN_OR_RETURN(auto sub, formats::json_string(lc, "init_param_path", file));
  if (!sub) return bad("llm_conf.init_param_path is missing (the directory of the decoder's config and tokenizer)");
  c.llm_dir = dir / *sub;

  FATHOM_ASSIGN_OR_RETURN(auto p, object("prompt"));
  FATHOM_ASSIGN_OR_RETURN(auto system, formats::json_string(p, "system", file));
  if (system) c.prompt.system = *system;
  FATHOM_ASSIGN_OR_RETURN(auto placeholder, formats::json_string(p, "placeholder", file));
  if (placeholder) c.prompt.placeholder = *placeholder;
  FATHOM_ASSIGN_OR_RETURN(auto user, formats::json_string(p, "user", file));
  if (!user) return bad("prompt.user is missing (the user turn holding the audio placeholder)");
  c.prompt.user = *user;
  if (!contains_once(c.prompt.user, c.prompt.placeholder))
    return bad("prompt.user must contain the placeholder '" + c.prompt.placeholder + "' exactly once");
  FATHOM_ASSIGN_OR_RETURN(auto luser, formats::json_string(p, "language_user", file));
  if (luser) {
    c.prompt.language_user = *luser;
    if (!contains_once(*luser, c.prompt.placeholder) || luser->find("{language}") == std::string::npos)
      return bad("prompt.language_user must contain '{language}' and the placeholder exactly once");
  }
  if (p.contains("languages")) {
    if (!p["languages"].is_object()) return bad("prompt.languages must be an object of code -> name");
    for (const auto& [code, name] : p["languages"].items()) {
      if (!name.is_string()) return bad("prompt.languages." + code + " must be a string");
      c.prompt.languages.emplace_back(code, name.get<std::string>());
    }
  }
  FATHOM_ASSIGN_OR_RETURN(auto context, formats::json_string(p, "context", file));
  if (context) {
    c.prompt.context = *context;
    if (c.prompt.context.find("{prompt}") == std::string::npos) return bad("prompt.context must contain '{prompt}'");
  }
  FATHOM_ASSIGN_OR_RETURN(auto seg, formats::json_number(j, "segment_seconds", file));
  if (seg) {
    if (*seg < 1.0 || *seg > 600.0) return bad("segment_seconds must be within [1, 600]");
    c.segment_seconds = *seg;
  }
  FATHOM_ASSIGN_OR_RETURN(auto mnt, formats::json_int(j, "max_new_tokens", file));
  if (mnt) {
    if (*mnt < 1) return bad("max_new_tokens must be >= 1");
    c.max_new_tokens = static_cast<int>(*mnt);
  }
  return c;
}

}  // namespace fathom::models::audiollm
