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
  int num_mel_bins() const override { return backend_.num_mel_bins(); }
  std::vector<std::string> languages() const override;
  Result<std::unique_ptr<SpeechJob>> start(std::vector<float> mel, int frames, double duration_s,
                                           const SpeechOptions& options) override;
  void step(const std::vector<SpeechJob*>& jobs) override;
  void cancel(SpeechJob* job) override;

  const GenerationConfig& generation_config() const { return gen_; }
  // Convenience for tests and the offline CLI: start() then step() until done.
  Result<Transcription> transcribe(std::vector<float> mel, int frames, double duration_s, const SpeechOptions& options);

 private:
  WhisperBackend& backend_;
  std::shared_ptr<const formats::Tokenizer> tok_;
  GenerationConfig gen_;
  int max_beams_;
};

}  // namespace fathom::models::whisper
