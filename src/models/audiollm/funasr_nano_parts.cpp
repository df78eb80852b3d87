#include "models/audiollm/funasr_nano_parts.h"

#include "formats/json_file.h"

namespace fathom::models::audiollm {
namespace {

void add_linear(std::vector<std::string>& out, const std::string& p, bool bias = true) {
  out.push_back(p + ".weight");
  if (bias) out.push_back(p + ".bias");
}

void add_sanm_layer(std::vector<std::string>& out, const std::string& p) {
  add_linear(out, p + ".self_attn.linear_q_k_v");
  out.push_back(p + ".self_attn.fsmn_block.weight");
  add_linear(out, p + ".self_attn.linear_out");
  add_linear(out, p + ".feed_forward.w_1");
  add_linear(out, p + ".feed_forward.w_2");
  add_linear(out, p + ".norm1");
  add_linear(out, p + ".norm2");
}

std::string str(int v) { return std::to_string(v); }

}  // namespace

std::vector<std::string> funasr_nano_tensor_names(const FunAsrNanoConfig& c, const decoder::DecoderConfig& llm) {
  std::vector<std::string> out;
  add_sanm_layer(out, "audio_encoder.encoders0.0");
  for (int i = 0; i + 1 < c.encoder.num_blocks; ++i) add_sanm_layer(out, "audio_encoder.encoders." + str(i));
  add_linear(out, "audio_encoder.after_norm");
  for (int i = 0; i < c.encoder.tp_blocks; ++i) add_sanm_layer(out, "audio_encoder.tp_encoders." + str(i));
  add_linear(out, "audio_encoder.tp_norm");
  add_linear(out, "audio_adaptor.linear1");
  add_linear(out, "audio_adaptor.linear2");
  for (int i = 0; i < c.adaptor.n_layer; ++i) {
    const std::string b = "audio_adaptor.blocks." + str(i);
    for (const char* l : {"linear_q", "linear_k", "linear_v", "linear_out"}) add_linear(out, b + ".self_attn." + l);
    add_linear(out, b + ".feed_forward.w_1");
    add_linear(out, b + ".feed_forward.w_2");
    add_linear(out, b + ".norm1");
    add_linear(out, b + ".norm2");
  }
  out.push_back("llm.model.embed_tokens.weight");
  for (int i = 0; i < llm.num_hidden_layers; ++i) {
    const std::string l = "llm.model.layers." + str(i);
    for (const char* n : {"q_proj", "k_proj", "v_proj"}) add_linear(out, l + ".self_attn." + n, llm.attention_bias);
    add_linear(out, l + ".self_attn.o_proj", false);
    if (llm.qk_norm) {
      out.push_back(l + ".self_attn.q_norm.weight");
      out.push_back(l + ".self_attn.k_norm.weight");
    }
    for (const char* n : {"gate_proj", "up_proj", "down_proj"}) add_linear(out, l + ".mlp." + n, false);
    out.push_back(l + ".input_layernorm.weight");
    out.push_back(l + ".post_attention_layernorm.weight");
  }
  out.push_back("llm.model.norm.weight");
  if (!llm.tie_word_embeddings) out.push_back("llm.lm_head.weight");
  return out;
}

Result<FunAsrNanoParts> complete_audio_llm_parts(FunAsrNanoConfig cfg, decoder::DecoderConfig llm,
                                                 const std::filesystem::path& dir) {
  if (llm.hidden_size != cfg.adaptor.llm_dim)
    return make_error(ErrorCode::kLoadFailed, (dir / "config.json").string() + ": the audio adaptor's llm_dim " +
                                                  str(cfg.adaptor.llm_dim) + " differs from the decoder's hidden_size " +
                                                  str(llm.hidden_size));
  FATHOM_ASSIGN_OR_RETURN(auto tokenizer, formats::Tokenizer::load(cfg.llm_dir / "tokenizer.json"));
  FATHOM_ASSIGN_OR_RETURN(auto tmpl, formats::load_chat_template(cfg.llm_dir));
  if (!tmpl)
    return make_error(ErrorCode::kLoadFailed, (cfg.llm_dir / "tokenizer_config.json").string() +
                                                  " has no chat_template (nor is there a chat_template.jinja); the "
                                                  "audio prompt is rendered with it");
  const auto placeholder = tokenizer->token_to_id(cfg.prompt.placeholder);
  if (!placeholder)
    return make_error(ErrorCode::kLoadFailed, (cfg.llm_dir / "tokenizer.json").string() + " has no token '" +
                                                  cfg.prompt.placeholder + "' (the prompt's audio placeholder)");
  FATHOM_ASSIGN_OR_RETURN(auto cmvn, formats::read_kaldi_cmvn(dir / cfg.cmvn_file));
  if (cmvn.shift.size() != static_cast<std::size_t>(cfg.encoder.input_size))
    return make_error(ErrorCode::kLoadFailed, (dir / cfg.cmvn_file).string() + " holds " + str(int(cmvn.shift.size())) +
                                                  " values per row; the encoder takes " + str(cfg.encoder.input_size));
  FATHOM_ASSIGN_OR_RETURN(auto fbank, formats::Fbank::create(cfg.fbank));
  FATHOM_ASSIGN_OR_RETURN(auto ckpt, formats::Checkpoint::open(dir));
  for (const auto& name : funasr_nano_tensor_names(cfg, llm))
    if (!ckpt.find(name))
      return make_error(ErrorCode::kLoadFailed, (dir / "model.safetensors").string() + ": tensor '" + name +
                                                    "' is missing (" +
                                                    (name.rfind("llm.", 0) == 0 ? "the decoder"
                                                     : name.rfind("audio_adaptor.", 0) == 0 ? "the audio adaptor"
                                                                                            : "the audio encoder") +
                                                    ")");
  return FunAsrNanoParts{std::move(cfg), std::move(llm), std::move(tokenizer), std::move(*tmpl), *placeholder,
                         std::move(cmvn), std::move(fbank), std::move(ckpt)};
}

Result<FunAsrNanoParts> resolve_funasr_nano(const std::filesystem::path& dir, const nlohmann::json& json) {
  FATHOM_ASSIGN_OR_RETURN(FunAsrNanoConfig cfg, parse_funasr_nano_config(json, dir));
  const auto llm_config_file = cfg.llm_dir / "config.json";
  FATHOM_ASSIGN_OR_RETURN(auto llm_json, formats::read_json_file(llm_config_file));
  FATHOM_ASSIGN_OR_RETURN(auto llm, decoder::parse_decoder_config(llm_json, llm_config_file));
  if (Status s = decoder::read_generation_config(cfg.llm_dir, llm); !s.ok()) return s.error();
  return complete_audio_llm_parts(std::move(cfg), std::move(llm), dir);
}

Result<std::vector<std::pair<std::string, std::string>>> inspect_funasr_nano(const std::filesystem::path& dir,
                                                                              const nlohmann::json& json) {
  FATHOM_ASSIGN_OR_RETURN(auto p, resolve_funasr_nano(dir, json));
  return describe_audio_llm(p, dir);
}

Result<std::vector<std::pair<std::string, std::string>>> describe_audio_llm(const FunAsrNanoParts& p,
                                                                             const std::filesystem::path& dir) {
  const auto& c = p.config;
  std::vector<std::pair<std::string, std::string>> rows;
  rows.emplace_back("frontend", "WavFrontend: Kaldi fbank " + str(c.fbank.num_mel_bins) + " bins (" + c.fbank.window +
                                    "), LFR " + str(c.lfr_m) + "/" + str(c.lfr_n) + ", CMVN " + c.cmvn_file);
  rows.emplace_back("encoder", "SenseVoiceEncoderSmall: " + str(c.encoder.num_blocks) + " + " + str(c.encoder.tp_blocks) +
                                   " SAN-M blocks, width " + str(c.encoder.output_size) + ", " +
                                   str(c.encoder.attention_heads) + " heads");
  rows.emplace_back("adaptor", "Transformer: downsample " + str(c.adaptor.downsample_rate) + ", " + str(c.adaptor.n_layer) +
                                   " blocks, " + str(c.adaptor.encoder_dim) + " -> " + str(c.adaptor.llm_dim));
  const auto llm_dir = c.llm_dir.lexically_relative(dir);
  const std::string where = llm_dir.empty() || llm_dir == "." ? "" : " (" + llm_dir.string() + "/)";
  rows.emplace_back("decoder", p.llm.architecture + where + ": " +
                                   str(p.llm.num_hidden_layers) + " layers, hidden " + str(p.llm.hidden_size) + ", " +
                                   str(p.llm.num_attention_heads) + "/" + str(p.llm.num_key_value_heads) +
                                   " heads, vocab " + str(p.llm.vocab_size));
  rows.emplace_back("placeholder", c.prompt.placeholder + " = token " + str(p.placeholder_id));
  std::string langs;
  for (const auto& [code, name] : c.prompt.languages) langs += (langs.empty() ? "" : ", ") + code;
  rows.emplace_back("languages", langs.empty() ? "none selectable (the prompt decides)" : langs);
  nlohmann::ordered_json ctx = {
      {"messages", nlohmann::ordered_json::array({{{"role", "system"}, {"content", c.prompt.system}},
                                                  {{"role", "user"}, {"content", c.prompt.user}}})},
      {"add_generation_prompt", true}};
  FATHOM_ASSIGN_OR_RETURN(auto prompt, p.chat_template.render(ctx));
  nlohmann::json quoted = prompt;
  rows.emplace_back("prompt", quoted.dump());
  return rows;
}

}  // namespace fathom::models::audiollm
