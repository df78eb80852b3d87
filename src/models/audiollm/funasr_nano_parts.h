#pragma once
// Everything a FunASR-Nano directory must hold, resolved without touching a device: config.json
// (funasr_nano_config.h), the LLM subdirectory's config.json / generation_config.json / tokenizer.json / chat
// template, the audio placeholder token, am.mvn, and the checkpoint with every tensor the encoder, adaptor and
// decoder read. The loader builds the model from it; `fathom inspect` describes it (or reports its error), so
// both name the same missing file, key, token or tensor.
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "formats/chat_template/chat_template.h"
#include "formats/fbank/kaldi_cmvn.h"
#include "formats/fbank/kaldi_fbank.h"
#include "formats/safetensors.h"
#include "formats/tokenizer/tokenizer.h"
#include "models/audiollm/funasr_nano_config.h"
#include "models/decoder/config.h"

namespace fathom::models::audiollm {

struct FunAsrNanoParts {
  FunAsrNanoConfig config;
  decoder::DecoderConfig llm;
  std::shared_ptr<const formats::Tokenizer> tokenizer;
  formats::ChatTemplate chat_template;
  int32_t placeholder_id = -1;
  formats::Cmvn cmvn;
  formats::Fbank fbank;
  formats::Checkpoint checkpoint;
};

// Errors: kLoadFailed / kUnsupported / kNotFound naming the file and key, the token, or the first missing tensor.
Result<FunAsrNanoParts> resolve_funasr_nano(const std::filesystem::path& dir, const nlohmann::json& config);

// The parts that follow from a parsed configuration (`config` and the decoder's `llm`): the tokenizer, chat
// template and placeholder token from config.llm_dir, config.cmvn_file and the checkpoint from `dir`, and every
// tensor of funasr_nano_tensor_names() checked present. resolve_funasr_nano() ends with it; a plugin that reads
// another directory layout into these structs calls it too (examples/audio_llm). Same errors as the resolver.
Result<FunAsrNanoParts> complete_audio_llm_parts(FunAsrNanoConfig config, decoder::DecoderConfig llm,
                                                 const std::filesystem::path& dir);

// The tensors the model reads, in load order: "audio_encoder.*", "audio_adaptor.*" and "llm.*" names.
std::vector<std::string> funasr_nano_tensor_names(const FunAsrNanoConfig& config, const decoder::DecoderConfig& llm);

// `fathom inspect` rows: frontend, encoder, adaptor, decoder, tokenizer, prompt (the rendered template).
Result<std::vector<std::pair<std::string, std::string>>> inspect_funasr_nano(const std::filesystem::path& dir,
                                                                              const nlohmann::json& config);

// The same rows for parts already resolved from `dir` (by the resolver above or a plugin's).
Result<std::vector<std::pair<std::string, std::string>>> describe_audio_llm(const FunAsrNanoParts& parts,
                                                                             const std::filesystem::path& dir);

}  // namespace fathom::models::audiollm
