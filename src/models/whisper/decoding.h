#pragma once
// Decoding one 30-second window, written against an abstract decoder step so it runs (and is tested)
// without the network.
//
// A WindowDecoder is a state machine: rows() lists the decoder inputs that need next-token logits now,
// advance() consumes their logits. Many decoders (of many requests) can put their rows into one batched
// decoder call, so requests join and leave a running batch at any step.
//
// Steps: (1) the prefix up to <|startoftranscript|> (gives no_speech_prob and, when no language is given,
// the language: argmax over the language tokens); (2) the rest of the forced prompt
// (<|lang|><|task|>[<|notimestamps|>]); then one token per step: greedy, temperature sampling (seeded,
// optional top_p) or beam search (length-normalised scores, transformers' defaults for Whisper), each
// after the logits rules (logits_rules.h). Stops at <|endoftext|>, max_new_tokens, or the decoder's
// position limit.
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "models/whisper/config.h"
#include "models/whisper/logits_rules.h"

namespace fathom::models::whisper {

// One decoder input row. The backend first makes `slot`'s cache a copy of `source_slot`'s (when
// source_slot >= 0 and differs; all copies of one call read the caches as they were before the call),
// keeps its first `cached` positions, runs tokens[cached..] through the decoder (appending them to the
// cache) and returns the logits of the last position.
struct DecodeRow {
  int slot = 0;
  int source_slot = -1;
  int cached = 0;
  std::vector<int32_t> tokens;  // full decoder input so far (prompt included)
};

struct WindowOptions {
  std::optional<std::string> language;  // code ("en"); nullopt: detect (multilingual models)
  bool translate = false;               // <|translate|> instead of <|transcribe|>
  bool timestamps = false;              // timestamp tokens instead of <|notimestamps|>
  std::vector<int32_t> previous;        // text tokens after <|startofprev|> (the request's prompt)
  int max_new_tokens = 224;             // tokens generated at most (EOS excluded)
  float temperature = 0.0f;             // 0: greedy / beam search; > 0: sampling
  float top_p = 1.0f;                   // nucleus sampling mass (sampling only)
  uint64_t seed = 0;                    // sampling seed
  int beams = 1;                        // beam search when > 1 (temperature must be 0)
};

struct WindowResult {
  std::vector<int32_t> prompt;   // the forced prompt used (startofprev part included)
  std::vector<int32_t> tokens;   // generated tokens, EOS excluded
  bool ended_with_eos = false;
  double sum_logprob = 0;        // of the generated tokens and the EOS, after the logits rules
  double avg_logprob = 0;        // sum_logprob / (tokens + 1), as Whisper reports it
  double no_speech_prob = 0;     // softmax at <|startoftranscript|> of the no-speech token
  std::string language;          // code used (given or detected); empty for English-only models
  double language_prob = 0;      // probability of `language` among the language tokens (1 if given)
  // log-softmax over the language tokens at the first step (only when detected), {token, logprob}.
  std::vector<std::pair<int, double>> language_logprobs;
};

class WindowDecoder {
 public:
  // `slots`: options.beams decoder cache slots owned by the caller (all bound to this window's encoder
  // output). `max_positions`: the decoder's position limit (max_target_positions).
  WindowDecoder(const GenerationConfig& gen, int vocab_size, int max_positions, WindowOptions options,
                std::vector<int> slots);

  bool done() const { return done_; }
  // Rows needing logits now; empty when done().
  std::vector<DecodeRow> rows() const;
  // Number of rows() without building them.
  std::size_t row_count() const;
  // Logits for rows() (same order), rows().size() * vocab_size floats. Errors on a size mismatch. The
  // logits are scratch: the logits rules are applied to them in place.
  Status advance(std::span<float> logits);
  const WindowResult& result() const { return result_; }
  // Tokens generated so far by the leading hypothesis (for streaming).
  std::vector<int32_t> partial_tokens() const;
  // The same without a copy (valid until the next advance()).
  std::span<const int32_t> partial_view() const;
  const std::vector<int32_t>& prompt() const { return prompt_; }

 private:
  enum class Phase { kDetect, kSot, kPrompt, kGenerate };
  struct Beam {
    int slot = 0;
    int source_slot = -1;
    int cached = 0;
    std::vector<int32_t> tokens;  // prompt + generated
    double score = 0;             // sum of logprobs of generated tokens
  };
  struct Finished {
    std::vector<int32_t> tokens;  // generated, EOS excluded
    double sum_logprob = 0;
    double normalized = 0;
    bool eos = false;
  };

  void build_prompt();
  int sot_index() const;
  std::span<const int32_t> generated(const Beam& b) const;
  Status step_single(std::span<float> logits);
  Status step_beams(std::span<float> logits);
  void finish_single(bool eos);
  void finish_beams();

  GenerationConfig gen_;
  int vocab_;
  int max_positions_;
  WindowOptions opt_;
  std::vector<int> slots_;
  LogitsRules rules_;
  Phase phase_;
  std::vector<int32_t> prompt_;
  std::vector<Beam> beams_;
  std::vector<Finished> finished_;
  std::mt19937_64 rng_;
  bool done_ = false;
  WindowResult result_;
};

// Softmax-normalised probability and log-softmax helpers over a subset of tokens.
// Returns {token, logprob} over `tokens` (log-softmax restricted to them), sorted by logprob descending.
std::vector<std::pair<int, double>> subset_log_softmax(std::span<const float> logits, const std::vector<int>& tokens);

}  // namespace fathom::models::whisper
