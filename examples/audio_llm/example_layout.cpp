#include "example_layout.h"

#include "formats/json_file.h"
#include "models/decoder/config.h"

namespace audio_llm_example {
namespace {

using fathom::ErrorCode;
using fathom::make_error;
using fathom::Result;
namespace audiollm = fathom::models::audiollm;

// The prompt this model family was trained with (the FunASR-Nano recipe): a transcription turn holding the
// audio placeholder, a turn naming the output language for requests that give one, and the context preamble a
// request's `prompt` goes into. A model author changes these, not the server.
audiollm::AudioPromptConfig prompt(std::string placeholder) {
  audiollm::AudioPromptConfig p;
  p.system = "You are a helpful assistant.";
  p.placeholder = placeholder;
  p.user = "语音转写:" + placeholder;
  p.language_user = "语音转写成{language}:" + placeholder;
  p.languages = {{"en", "英文"}, {"ja", "日文"}, {"zh", "中文"}};
  p.context = "请结合上下文信息，更加准确地完成语音转写任务。如果没有相关信息，我们会留空。\n\n\n**上下文信息：**\n\n\n{prompt}\n";
  return p;
}

}  // namespace

Result<audiollm::FunAsrNanoParts> resolve(const std::filesystem::path& dir, const nlohmann::json& j) {
  const auto file = dir / "config.json";
  const auto bad = [&](const std::string& what) { return make_error(ErrorCode::kLoadFailed, file.string() + ": " + what); };
  const auto object = [&](const nlohmann::json& parent, const char* key, const std::string& where) -> Result<nlohmann::json> {
    if (!parent.contains(key) || !parent[key].is_object()) return bad("missing object '" + where + key + "'");
    return parent[key];
  };
  audiollm::FunAsrNanoConfig c;
  FATHOM_ASSIGN_OR_RETURN(auto audio, object(j, "audio_config", ""));
  c.fbank.window = "hamming";  // the WavFrontend's Kaldi fbank: 25 ms hamming windows every 10 ms at 16 kHz
  FATHOM_ASSIGN_OR_RETURN(auto mels, fathom::formats::json_int(audio, "num_mel_bins", file));
  if (mels) c.fbank.num_mel_bins = static_cast<int>(*mels);
  FATHOM_ASSIGN_OR_RETURN(auto m, fathom::formats::json_int(audio, "lfr_m", file));
  FATHOM_ASSIGN_OR_RETURN(auto n, fathom::formats::json_int(audio, "lfr_n", file));
  if (m) c.lfr_m = static_cast<int>(*m);
  if (n) c.lfr_n = static_cast<int>(*n);
  if (c.lfr_m < 1 || c.lfr_n < 1) return bad("audio_config.lfr_m and lfr_n must be >= 1");
  FATHOM_ASSIGN_OR_RETURN(auto cmvn, fathom::formats::json_string(audio, "cmvn_file", file));
  if (cmvn) c.cmvn_file = *cmvn;
  FATHOM_ASSIGN_OR_RETURN(auto enc, object(audio, "encoder", "audio_config."));
  FATHOM_ASSIGN_OR_RETURN(c.encoder, fathom::models::sensevoice::parse_sensevoice_encoder_config(enc, file.string()));
  if (c.encoder.input_size != c.fbank.num_mel_bins * c.lfr_m)
    return bad("audio_config.encoder.input_size " + std::to_string(c.encoder.input_size) +
               " is not num_mel_bins x lfr_m = " + std::to_string(c.fbank.num_mel_bins * c.lfr_m));
  FATHOM_ASSIGN_OR_RETURN(auto adaptor, object(j, "adaptor_config", ""));
  FATHOM_ASSIGN_OR_RETURN(c.adaptor, audiollm::parse_audio_adaptor_config(adaptor, file.string()));
  if (c.adaptor.encoder_dim != c.encoder.output_size)
    return bad("adaptor_config.encoder_dim " + std::to_string(c.adaptor.encoder_dim) +
               " differs from audio_config.encoder.output_size " + std::to_string(c.encoder.output_size));

  FATHOM_ASSIGN_OR_RETURN(auto text, object(j, "text_config", ""));
  FATHOM_ASSIGN_OR_RETURN(auto llm, fathom::models::decoder::parse_decoder_config(text, file));
  if (auto s = fathom::models::decoder::read_generation_config(dir, llm); !s.ok()) return s.error();
  c.llm_architecture = llm.architecture;
  c.llm_dir = dir;  // tokenizer.json and tokenizer_config.json sit beside config.json

  FATHOM_ASSIGN_OR_RETURN(auto token, fathom::formats::json_string(j, "audio_token", file));
  c.prompt = prompt(token.value_or("<|AUDIO|>"));
  return audiollm::complete_audio_llm_parts(std::move(c), std::move(llm), dir);
}

}  // namespace audio_llm_example
