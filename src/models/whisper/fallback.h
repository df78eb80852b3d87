#pragma once
// Temperature fallback, as openai-whisper's transcribe() applies it per 30 s window: the window is decoded at
// the first temperature of the schedule and decoded again at the next one while the result looks like a
// failure (its text compresses too well: repetition; or its average log-probability is too low), unless the
// window looks like silence (a high no-speech probability with a low log-probability). After the last
// attempt a window that looks like silence is skipped: no segment, the seek moves past the window.
// Off (one decode at SpeechOptions::temperature, nothing skipped) unless the schedule has two or more
// temperatures, so greedy output is exactly transformers' greedy output by default.
#include <optional>
#include <vector>

namespace fathom::models::whisper {

struct FallbackOptions {
  std::vector<float> temperatures;                   // the schedule, increasing; >= 2 entries turn fallback on
  std::optional<double> compression_ratio_threshold; // decode again when the window's text compresses more
  std::optional<double> logprob_threshold;           // decode again when avg_logprob is below it
  std::optional<double> no_speech_threshold;         // silence: no_speech_prob above it (and avg_logprob low)
  bool enabled() const { return temperatures.size() >= 2; }
};

// Whether a window decoded with these statistics is decoded again at the next temperature (when there is one).
bool needs_fallback(const FallbackOptions& options, double compression_ratio, double avg_logprob, double no_speech_prob);

// Whether the final decode of a window is treated as silence and skipped (only when fallback is enabled).
bool window_is_silent(const FallbackOptions& options, double avg_logprob, double no_speech_prob);

}  // namespace fathom::models::whisper
