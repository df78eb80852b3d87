#include "models/whisper/fallback.h"

namespace fathom::models::whisper {

bool needs_fallback(const FallbackOptions& o, double compression_ratio, double avg_logprob, double no_speech_prob) {
  bool again = false;
  if (o.compression_ratio_threshold && compression_ratio > *o.compression_ratio_threshold) again = true;  // repetitive
  if (o.logprob_threshold && avg_logprob < *o.logprob_threshold) again = true;                           // unlikely
  // Silence is not a decoding failure: a likely no-speech window with a low log-probability is kept as it is.
  if (o.no_speech_threshold && no_speech_prob > *o.no_speech_threshold && o.logprob_threshold &&
      avg_logprob < *o.logprob_threshold)
    again = false;
  return again;
}

bool window_is_silent(const FallbackOptions& o, double avg_logprob, double no_speech_prob) {
  if (!o.enabled() || !o.no_speech_threshold) return false;
  bool silent = no_speech_prob > *o.no_speech_threshold;
  // A confident transcript overrides the no-speech probability.
  if (o.logprob_threshold && avg_logprob > *o.logprob_threshold) silent = false;
  return silent;
}

}  // namespace fathom::models::whisper
