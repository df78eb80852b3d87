#pragma once
// The configuration of a FunASR-Nano-style audio-LLM directory (config.json architectures ["FunASRNano"]):
//   frontend "WavFrontend" (frontend_conf: fs, window, n_mels, frame_length / frame_shift in ms, lfr_m, lfr_n,
//   dither (must be 0), cmvn_file), audio_encoder "SenseVoiceEncoderSmall" (audio_encoder_conf), audio_adaptor
//   "Transformer" (audio_adaptor_conf), llm "Qwen3ForCausalLM" / "Qwen2ForCausalLM" whose config, generation
//   config and tokenizer sit in llm_conf.init_param_path (a subdirectory) and whose tensors are "llm.*" of the
//   main checkpoint, and the prompt: system text, the user turn holding the audio placeholder, the user turn
//   used when a language is asked for ("{language}" replaced by its name in `languages`), and the context
//   preamble used with a request prompt ("{prompt}" replaced by it).
// Errors name config.json and the key; a component fathom does not implement is kUnsupported naming it.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "formats/fbank/kaldi_fbank.h"
#include "models/audiollm/audio_adaptor.h"
#include "models/sensevoice/sensevoice_encoder.h"

namespace fathom::models::audiollm {

struct AudioPromptConfig {
  std::string system = "You are a helpful assistant.";
  std::string user;           // contains placeholder once
  std::string placeholder = "<|AUDIO|>";
  std::string language_user;  // contains "{language}" and placeholder; empty: no language selection
  std::vector<std::pair<std::string, std::string>> languages;  // code -> name, sorted by code
  std::string context;        // contains "{prompt}"; empty: request prompts are refused
};

struct FunAsrNanoConfig {
  formats::FbankOptions fbank;
  int lfr_m = 7, lfr_n = 6;
  std::string cmvn_file = "am.mvn";
  sensevoice::SenseVoiceEncoderConfig encoder;
  AudioAdaptorConfig adaptor;
  std::string llm_architecture;
  std::filesystem::path llm_dir;    // absolute
  AudioPromptConfig prompt;
  double segment_seconds = 30.0;    // long audio is cut into windows of this length
  int max_new_tokens = 512;         // per window unless the request says otherwise
};

Result<FunAsrNanoConfig> parse_funasr_nano_config(const nlohmann::json& config, const std::filesystem::path& dir);

}  // namespace fathom::models::audiollm
