#pragma once
// Whisper's logits processors, as transformers applies them during generate():
// SuppressTokensAtBegin (begin_suppress_tokens, first generated position only), SuppressTokens, then the
// timestamp rules of WhisperTimeStampLogitsProcessor. Pure functions on one row of logits; no device.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace fathom::models::whisper {

struct GenerationConfig;

struct LogitsRules {
  int vocab_size = 0;
  int eos_token_id = 50257;
  int no_timestamps_token_id = 50363;
  int timestamp_begin = 50364;                   // first timestamp token (<|0.00|>)
  std::vector<int> suppress_tokens;              // always -inf
  std::vector<int> begin_suppress_tokens;        // -inf at the first generated position
  bool timestamps = false;                       // apply the timestamp rules
  std::optional<int> max_initial_timestamp_index;  // first timestamp at most <|index*0.02|>
};

LogitsRules make_logits_rules(const GenerationConfig& gen, int vocab_size, bool timestamps);

// Applies the rules in place to `logits` (vocab_size floats) of the next token. `generated` holds the
// tokens produced after the forced prompt (transformers' input_ids[begin_index:]).
void apply_logits_rules(const LogitsRules& rules, std::span<const int32_t> generated, std::span<float> logits);

// log_softmax of `logits` (-inf stays -inf), in double for stable comparisons.
std::vector<double> log_softmax(std::span<const float> logits);

// One row's statistics without materialising a log-softmax: the index of the first maximum (torch.argmax's
// choice on ties; 0 for an empty or all -inf row), the maximum, and log(sum(exp(logits))) (-inf when every
// entry is -inf). A max pass and one exp pass in float (vectorised; exp within ~2 ulp) with the sum
// accumulated in double, so logits[i] - logsumexp is the log-probability within ~1e-6 of log_softmax().
struct RowStats {
  int argmax = 0;
  float max = 0;
  double logsumexp = 0;
};
RowStats row_stats(std::span<const float> logits);
// log(sum(exp(logits))) alone (same method as row_stats).
double log_sum_exp(std::span<const float> logits);

}  // namespace fathom::models::whisper
