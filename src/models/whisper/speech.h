#pragma once
// SpeechToText over any WhisperBackend: validates requests, creates TranscriptionJobs, steps them.
#include <memory>

#include "models/model.h"
#include "models/whisper/backend.h"
#include "models/whisper/config.h"

namespace fathom::models::whisper {

class WhisperSpeech final : public SpeechToText {
 public:
  // `backend` must outlive this object.
  WhisperSpeech(WhisperBackend& backend, std::shared_ptr<const formats::Tokenizer> tokenizer, GenerationConfig gen,
                int max_beams = 8);

  const formats::Tokenizer& tokenizer() const override { return *tok_; }
  int num_mel_bins() const { return backend_.num_mel_bins(); }
  std::vector<std::string> languages() const override;
  // Computes the Whisper log-mel of `samples` (16 kHz mono; padded to 30 s, or the whole signal when
  // longer) and starts a job over it (start_mel). When the backend computes log-mels itself (CUDA), audio
  // up to 30 s is handed to it instead and nothing is computed here.
  Result<std::unique_ptr<SpeechJob>> start(std::vector<float> samples, const SpeechOptions& options) override;
  // A job over a log-mel spectrogram `mel` [num_mel_bins(), frames] row-major (10 ms frames, the
  // extractor's normalisation; audio up to 30 s padded to 3000 frames). Thread-safe.
  Result<std::unique_ptr<SpeechJob>> start_mel(std::vector<float> mel, int frames, double duration_s,
                                               const SpeechOptions& options);
  void step(const std::vector<SpeechJob*>& jobs) override;
  void cancel(SpeechJob* job) override;

  const GenerationConfig& generation_config() const { return gen_; }
  // Convenience for tests and the offline CLI: start() then step() until done.
  Result<Transcription> transcribe(std::vector<float> mel, int frames, double duration_s, const SpeechOptions& options);

 private:
  Result<std::unique_ptr<SpeechJob>> start_job(std::vector<float> mel, int frames, double duration_s,
                                               const SpeechOptions& options, std::vector<float> samples);

  WhisperBackend& backend_;
  std::shared_ptr<const formats::Tokenizer> tok_;
  GenerationConfig gen_;
  int max_beams_;
};

}  // namespace fathom::models::whisper
