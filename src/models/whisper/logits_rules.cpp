#include "models/whisper/logits_rules.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "models/whisper/config.h"

namespace fathom::models::whisper {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

void suppress(std::span<float> logits, int begin, int end) {
  begin = std::max(begin, 0);
  end = std::min(end, static_cast<int>(logits.size()));
  for (int i = begin; i < end; ++i) logits[i] = kNegInf;
}

void suppress_list(std::span<float> logits, const std::vector<int>& ids) {
  for (int id : ids)
    if (id >= 0 && id < static_cast<int>(logits.size())) logits[id] = kNegInf;
}

}  // namespace

LogitsRules make_logits_rules(const GenerationConfig& gen, int vocab_size, bool timestamps) {
  LogitsRules r;
  r.vocab_size = vocab_size;
  r.eos_token_id = gen.eos_token_id;
  r.no_timestamps_token_id = gen.no_timestamps_token_id;
  r.timestamp_begin = gen.timestamp_begin();
  r.suppress_tokens = gen.suppress_tokens;
  r.begin_suppress_tokens = gen.begin_suppress_tokens;
  r.timestamps = timestamps;
  r.max_initial_timestamp_index = gen.max_initial_timestamp_index;
  return r;
}

std::vector<double> log_softmax(std::span<const float> logits) {
  double mx = -std::numeric_limits<double>::infinity();
  for (float v : logits) mx = std::max(mx, static_cast<double>(v));
  std::vector<double> out(logits.size());
  if (!std::isfinite(mx)) {
    std::fill(out.begin(), out.end(), -std::numeric_limits<double>::infinity());
    return out;
  }
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - mx);
  double lse = mx + std::log(sum);
  for (std::size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<double>(logits[i]) - lse;
  return out;
}

void apply_logits_rules(const LogitsRules& rules, std::span<const int32_t> generated, std::span<float> logits) {
  const int n = static_cast<int>(logits.size());
  // SuppressTokensAtBeginLogitsProcessor: only at the first generated position.
  if (generated.empty()) suppress_list(logits, rules.begin_suppress_tokens);
  // SuppressTokensLogitsProcessor.
  suppress_list(logits, rules.suppress_tokens);
  if (!rules.timestamps) return;

  // WhisperTimeStampLogitsProcessor.
  const int tb = rules.timestamp_begin;
  if (rules.no_timestamps_token_id >= 0 && rules.no_timestamps_token_id < n) logits[rules.no_timestamps_token_id] = kNegInf;
  const std::size_t len = generated.size();
  const bool last_was_timestamp = len >= 1 && generated[len - 1] >= tb;
  const bool penultimate_was_timestamp = len < 2 || generated[len - 2] >= tb;
  if (last_was_timestamp) {
    if (penultimate_was_timestamp)
      suppress(logits, tb, n);  // a pair is complete: text (or eos) must follow
    else
      suppress(logits, 0, rules.eos_token_id);  // an open pair: no normal text
  }
  int last_timestamp = -1;
  for (auto t : generated)
    if (t >= tb) last_timestamp = t;
  if (last_timestamp >= 0) {
    // Timestamps never decrease; a closing timestamp may repeat the opening one, otherwise strictly later.
    int limit = (last_was_timestamp && !penultimate_was_timestamp) ? last_timestamp : last_timestamp + 1;
    suppress(logits, tb, limit);
  }
  if (generated.empty()) {
    suppress(logits, 0, tb);  // the first generated token is a timestamp
    if (rules.max_initial_timestamp_index) suppress(logits, tb + *rules.max_initial_timestamp_index + 1, n);
  }
  // Force a timestamp when their total probability beats every single text token.
  auto lp = log_softmax(logits);
  double ts_max = -std::numeric_limits<double>::infinity();
  for (int i = tb; i < n; ++i) ts_max = std::max(ts_max, lp[i]);
  if (std::isfinite(ts_max)) {
    double s = 0;
    for (int i = tb; i < n; ++i) s += std::exp(lp[i] - ts_max);
    double ts_logprob = ts_max + std::log(s);
    double text_max = -std::numeric_limits<double>::infinity();
    for (int i = 0; i < std::min(tb, n); ++i) text_max = std::max(text_max, lp[i]);
    if (ts_logprob > text_max) suppress(logits, 0, tb);
  }
}

}  // namespace fathom::models::whisper
