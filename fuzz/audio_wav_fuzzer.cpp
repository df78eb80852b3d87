// Fuzzes the built-in RIFF/WAVE reader (decode_wav, the FFmpeg-less path) on arbitrary bytes.
// Checked besides "no crash": output is 16 kHz, finite, within the duration limit; features are finite.
#include <cmath>
#include <cstdlib>
#include <span>

#include "formats/audio/audio.h"
#include "formats/mel/log_mel.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  (void)fathom::formats::looks_like_wav(bytes);
  fathom::formats::AudioLimits limits;
  limits.max_duration_seconds = 60.0;
  auto audio = fathom::formats::decode_wav(bytes, limits);
  if (!audio.ok()) return 0;
  if (audio->sample_rate != fathom::formats::kWhisperSampleRate || audio->samples.empty()) std::abort();
  if (audio->duration_seconds() > limits.max_duration_seconds + 1.0) std::abort();
  for (float s : audio->samples)
    if (!std::isfinite(s)) std::abort();
  if (audio->samples.size() >= 160 && audio->samples.size() <= 16000) {
    fathom::formats::LogMelOptions options;
    options.pad_or_trim_samples = 0;
    auto mel = fathom::formats::whisper_log_mel(audio->samples, options);
    if (!mel.ok()) std::abort();
    for (float v : mel->data)
      if (!std::isfinite(v)) std::abort();
  }
  return 0;
}
