#pragma once
// The checks the audio fuzz targets apply to what decodes: 16 kHz, not empty, finite samples, within the
// duration limit (1 s of slack); short enough outputs also go through the log-mel front end, whose
// features must be finite. A failed check aborts (a libFuzzer crash).
#include <cmath>
#include <cstddef>
#include <cstdlib>

#include "formats/audio/audio.h"
#include "formats/mel/log_mel.h"

namespace fathom::fuzz {

// `max_mel_samples`: outputs of 160 to this many samples are also turned into log-mel features.
inline void check_decoded_audio(const formats::AudioBuffer& audio, const formats::AudioLimits& limits,
                                std::size_t max_mel_samples) {
  if (audio.sample_rate != formats::kWhisperSampleRate || audio.samples.empty()) std::abort();
  if (audio.duration_seconds() > limits.max_duration_seconds + 1.0) std::abort();
  for (float s : audio.samples)
    if (!std::isfinite(s)) std::abort();
  if (audio.samples.size() >= 160 && audio.samples.size() <= max_mel_samples) {
    formats::LogMelOptions options;
    options.pad_or_trim_samples = 0;
    auto mel = formats::whisper_log_mel(audio.samples, options);
    if (!mel.ok()) std::abort();
    for (float v : mel->data)
      if (!std::isfinite(v)) std::abort();
  }
}

}  // namespace fathom::fuzz
