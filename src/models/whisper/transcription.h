#pragma once
// One speech request over the whole audio: 30 s windows decoded one after another (the next window starts
// at the last complete timestamp pair, as transformers' long-form generate does), segments with times
// relative to the original audio, and the scheduling step that advances many jobs in one batch.
//
// Thread-safety: the device worker drives jobs (step_jobs); done(), text_so_far() and result() may be
// called from any thread.
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "models/model.h"
#include "models/whisper/backend.h"
#include "models/whisper/config.h"
#include "models/whisper/decoding.h"
#include "models/whisper/fallback.h"
#include "models/whisper/segments.h"

namespace fathom::models::whisper {

struct JobSetup {
  WindowOptions window;          // per-window decoding options (language may be empty: detect once)
  FallbackOptions fallback;      // temperature fallback (off unless fallback.enabled())
  float window_pad_value = 0.0f; // mel value past the audio inside the last window (transformers pads 0)
};

// Text of text-only token ids (the tokenizer's decode; never fails: invalid pieces become U+FFFD).
using TextDecoder = std::function<std::string(const std::vector<int32_t>&)>;

class TranscriptionJob final : public SpeechJob {
 public:
  // `mel` [n_mels, frames] row-major; `frames` >= 1. With `samples` (16 kHz, at most 30 s; `mel` then
  // empty and frames = 3000) the first window is encoded from the audio by the backend
  // (WhisperBackend::encode_audio) and the host log-mel is computed only if a later window needs it.
  TranscriptionJob(TextDecoder decode, const GenerationConfig& gen, int vocab_size,
                   int max_positions, int n_mels, std::vector<float> mel, int frames, double duration_s,
                   JobSetup setup, std::vector<float> samples = {});

  bool done() const override { return done_.load(); }
  std::string text_so_far() const override;
  Result<Transcription> result() const override;
  double seconds_done() const override { return seconds_done_.load(); }

  // --- driven by step_jobs() on the device worker ---
  bool needs_window() const { return !done() && !decoder_; }
  int beams() const { return setup_.window.beams; }
  std::vector<float> window_mel();            // [n_mels, 3000] at the current seek
  // The window's audio when the backend encodes it from samples (first window of short audio), else empty.
  std::span<const float> window_audio() const;
  void start_window(std::vector<int> slots);  // the window is encoded into `slots`
  WindowDecoder* decoder() { return decoder_ ? &*decoder_ : nullptr; }
  // Called when decoder() is done: records its segments, moves the seek; returns the slots to release. With
  // temperature fallback, a window that needs it is started again at the next temperature in the same slots
  // instead (nothing returned), and a silent final window is skipped.
  std::vector<int> finish_window();
  // Ends the job with `error`; returns the slots to release.
  std::vector<int> fail(Error error);
  // Records the tokens behind text_so_far() after a step (a copy of token ids; the text itself is decoded
  // only when text_so_far() is asked).
  void refresh_text();

 private:
  std::string text_of(const std::vector<int32_t>& tokens) const;
  // A decoder for the current window at setup_.fallback.temperatures[attempt] (or setup_.window's options).
  void start_attempt(std::size_t attempt);

  TextDecoder decode_;
  GenerationConfig gen_;
  int vocab_, max_positions_, n_mels_;
  std::vector<float> mel_;
  std::vector<float> samples_;
  int frames_;
  int max_frames_;
  JobSetup setup_;
  int seek_ = 0;
  int window_frames_ = 0;
  std::size_t attempt_ = 0;  // index into setup_.fallback.temperatures of the running window's decode
  std::optional<WindowDecoder> decoder_;
  std::vector<int> slots_;
  Transcription out_;
  std::vector<int32_t> text_tokens_;  // text tokens of finished windows

  mutable std::mutex mu_;
  mutable std::string text_;             // the text reported so far (only ever extended)
  std::vector<int32_t> shown_;           // text tokens behind the next text_so_far()
  mutable bool shown_dirty_ = false;     // shown_ changed since text_ was last decoded
  std::optional<Error> error_;
  std::atomic<bool> done_{false};
  std::atomic<double> seconds_done_{0.0};  // audio before the seek (the duration once done)
};

// One scheduling step: starts windows for jobs that need one (while slots last; all of them encoded in one
// batch), then runs one batched decoder call over every job's rows and advances them. Jobs that are done
// are skipped; a failure fails only the jobs it concerns.
void step_jobs(WhisperBackend& backend, const std::vector<TranscriptionJob*>& jobs);

}  // namespace fathom::models::whisper
