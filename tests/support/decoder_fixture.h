#pragma once
// The decoder-LLM fixtures (tests/fixtures/models/funasr-nano-random-{a,b}, made by
// scripts/fixtures/make_audiollm.py): the Qwen3 decoder inside the audio-LLM checkpoint (tensors "llm.*",
// config and tokenizer in Qwen3-tiny/), the greedy reference cases and the adaptor outputs spliced at the
// <|AUDIO|> placeholder.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/decoder/decoder_lm.h"
#include "models/decoder/generator.h"
#include "models/model.h"

namespace fathom::testing {

struct DecoderFixture {
  std::string name;
  nlohmann::json reference;  // <name>.reference.json
  std::unique_ptr<models::decoder::DecoderLm> lm;
};

// Loads fixture `name` (on the CPU in f32 unless told) with the given KV cache settings; failures are gtest
// failures and leave `lm` null.
DecoderFixture load_decoder_fixture(const std::string& name, std::size_t kv_cache_bytes = 4 << 20, int block_size = 16,
                                    Device device = Device::cpu(), DType dtype = DType::kF32);

// The adaptor output of `clip` ("jfk" / "tones") as f32 rows [n, hidden].
std::vector<float> fixture_adaptor(const DecoderFixture& f, const std::string& clip);

// A reference clip's audio as 16 kHz samples (`clip` is an entry of the reference's "clips": its "audio" path is
// under the shared assets when it starts with "whisper/", else under the repository). A decode failure is a
// gtest failure and gives no samples.
std::vector<float> audiollm_clip_samples(const nlohmann::json& clip);

// The request options of reference case `key` of "generate.cases": its max_new_tokens, the language of a
// *language_en* case, the context prompt of a *prompt* case.
models::SpeechOptions audiollm_case_options(const std::string& key, const nlohmann::json& case_json);

// The prompt of reference case `key`: ids before the placeholder, the adaptor rows, ids after it.
std::vector<models::decoder::PromptPart> fixture_prompt(const DecoderFixture& f, const std::string& key);

}  // namespace fathom::testing
