#pragma once
// Whisper's config.json (WhisperConfig) and generation_config.json, parsed into plain structs.
//
// Errors name the file and the key at fault. Token ids are int32 vocabulary ids.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace fathom::models::whisper {

// The network's shape (config.json).
struct WhisperConfig {
  int d_model = 0;
  int encoder_layers = 0;
  int decoder_layers = 0;
  int encoder_attention_heads = 0;
  int decoder_attention_heads = 0;
  int encoder_ffn_dim = 0;
  int decoder_ffn_dim = 0;
  int num_mel_bins = 80;
  int max_source_positions = 1500;  // encoder positions (= mel frames / 2)
  int max_target_positions = 448;   // decoder positions (prompt + generated tokens)
  int vocab_size = 0;
  std::string activation_function = "gelu";  // "gelu" (erf) or "gelu_new"/"gelu_pytorch_tanh" (tanh)
  bool scale_embedding = false;              // multiply token embeddings by sqrt(d_model)
  std::string dtype;                         // checkpoint dtype as declared ("float32", ...), may be empty
  int decoder_start_token_id = 50258;
  int eos_token_id = 50257;
};

// Decoding facts (generation_config.json).
struct GenerationConfig {
  int decoder_start_token_id = 50258;  // <|startoftranscript|>
  int eos_token_id = 50257;            // <|endoftext|>
  int pad_token_id = 50257;
  int no_timestamps_token_id = 50363;  // <|notimestamps|>; timestamps start right after it
  std::optional<int> prev_sot_token_id;  // <|startofprev|>
  std::vector<int> suppress_tokens;
  std::vector<int> begin_suppress_tokens;
  std::optional<int> max_initial_timestamp_index;
  bool is_multilingual = false;
  std::map<std::string, int> lang_to_id;  // language code ("en", "yue") -> token id
  std::map<std::string, int> task_to_id;  // "transcribe" / "translate" -> token id
  // Forced prompt positions (1-based after decoder_start) and ids; a null id means "chosen at run time".
  std::vector<std::pair<int, std::optional<int>>> forced_decoder_ids;
  int max_length = 448;

  int timestamp_begin() const { return no_timestamps_token_id + 1; }
  // <|nospeech|> (<|nocaptions|> in older vocabularies): the token just before <|notimestamps|>.
  int no_speech_token_id() const { return no_timestamps_token_id - 1; }
  // Token of a language code ("en"), or nullopt.
  std::optional<int> language_token(const std::string& code) const;
  // Language code of a token id, or empty.
  std::string language_code(int token) const;
};

Result<WhisperConfig> parse_whisper_config(const nlohmann::json& config, const std::string& origin = "config.json");
Result<GenerationConfig> parse_generation_config(const nlohmann::json& gen,
                                                 const std::string& origin = "generation_config.json");
// Reads DIR/generation_config.json. Without it, falls back to the Whisper defaults derived from config.json
// (decoder start, eos) and no language table (the model is then treated as English-only).
Result<GenerationConfig> load_generation_config(const std::filesystem::path& dir, const WhisperConfig& config);

// Maps a user-supplied language ("en", "EN", "english", "<|en|>") to its code in `gen`, or an error
// listing what is accepted.
Result<std::string> normalize_language(const GenerationConfig& gen, const std::string& language);

}  // namespace fathom::models::whisper
