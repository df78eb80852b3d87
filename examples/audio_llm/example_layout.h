#pragma once
// The ExampleAudioLlm directory layout, a custom audio-LLM that keeps everything in one directory:
//   config.json            architectures ["ExampleAudioLlm"], and
//                            audio_config:   num_mel_bins, lfr_m, lfr_n, cmvn_file, encoder (a SenseVoice
//                                            encoder configuration: input_size, output_size, attention_heads,
//                                            linear_units, num_blocks, tp_blocks, kernel_size, sanm_shfit)
//                            adaptor_config: the projector (downsample_rate, encoder_dim, llm_dim, ffn_dim,
//                                            n_layer, attention_heads)
//                            text_config:    the decoder's own config.json object (Qwen2 / Qwen3)
//                            audio_token:    the placeholder token (default "<|AUDIO|>")
//   generation_config.json, tokenizer.json, tokenizer_config.json (with the chat template), the CMVN file,
//   model.safetensors ("audio_encoder.*", "audio_adaptor.*", "llm.*").
// The prompt is not in the directory: the plugin declares it (kPrompt in example_layout.cpp), as a model
// author does for the prompt the model was trained with.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/audiollm/funasr_nano_parts.h"

namespace audio_llm_example {

inline constexpr const char* kArchitecture = "ExampleAudioLlm";

// Reads the layout into fathom's audio-LLM parts (fathom::models::audiollm::complete_audio_llm_parts checks
// the tokenizer, placeholder, CMVN file and every tensor). Errors name config.json and the key.
fathom::Result<fathom::models::audiollm::FunAsrNanoParts> resolve(const std::filesystem::path& dir,
                                                                 const nlohmann::json& config);

}  // namespace audio_llm_example
