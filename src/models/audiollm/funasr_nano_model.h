#pragma once
// A FunASR-Nano-style audio-LLM (config.json architectures ["FunASRNano"], funasr_nano_config.h) as a fathom
// Model with the SpeechToText capability, served on /v1/audio/transcriptions:
//   16 kHz samples, cut into windows of segment_seconds  ->  Kaldi fbank (formats/fbank)  ->  LFR stacking  ->
//   CMVN (am.mvn)  ->  SenseVoice encoder  ->  "Transformer" adaptor  ->  the Qwen decoder, prompted with the
//   tokenizer's chat template (formats/chat_template) rendered over [system, user] with add_generation_prompt,
//   the adaptor's rows spliced in place of the single audio placeholder token  ->  generated text.
// Continuous batching: every window of every job is one generation request of one decoder::Generator; step()
// encodes the windows of newly started jobs in one batch, submits them, and runs one decoder step for all.
// A request's `language` selects prompt.language_user (codes from prompt.languages; others are refused naming
// the accepted ones); without it the default prompt lets the model decide, and the reported language is read
// from the transcript's script (kana: ja, hangul: ko, han: zh, latin: en; among the model's languages, else
// "unknown"). `prompt` is placed in prompt.context before the user turn. Translation is refused (kUnsupported).
// Not thread-safe beyond SpeechToText's contract: start() from any thread, step()/cancel() on the device worker.
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "models/audiollm/funasr_nano_parts.h"
#include "models/model.h"
#include "models/registry.h"

namespace fathom::models::audiollm {

// Registry facts: architecture FunASRNano, model_type funasr_nano, task transcribe, CPU (f32) and CUDA.
ModelInfo funasr_nano_model_info();

// The registry's loader. Errors name the file or key at fault (config.json, am.mvn, the LLM subdirectory's
// config/tokenizer/chat template, a missing tensor).
Result<std::unique_ptr<Model>> load_funasr_nano(const std::filesystem::path& dir, const nlohmann::json& config,
                                                const LoadOptions& options, const ModelInfo& info);

// The audio-LLM runtime from parts already resolved, by resolve_funasr_nano() or by a plugin's own resolver of
// another directory layout (examples/audio_llm): loads the SenseVoice encoder ("audio_encoder.*"), the adaptor
// ("audio_adaptor.*") and the decoder ("llm.*", with its paged KV cache and CUDA graph decode buckets) from
// parts.checkpoint onto options.device, and serves parts.config.prompt through parts.chat_template.
// `architecture` is what Model::architecture() reports; `config` is read for torch_dtype only; `info` names the
// model in errors and memory accounts. Errors: kUnsupported (device / dtype), kLoadFailed (a tensor's shape).
Result<std::unique_ptr<Model>> assemble_audio_llm(FunAsrNanoParts parts, const std::string& architecture,
                                                  const std::filesystem::path& dir, const nlohmann::json& config,
                                                  const LoadOptions& options, const ModelInfo& info);

}  // namespace fathom::models::audiollm
