// Fuzzes the built-in RIFF/WAVE reader (decode_wav, the FFmpeg-less path) on arbitrary bytes.
// Checked besides "no crash": output is 16 kHz, finite, within the duration limit; features are finite.
#include <span>

#include "formats/audio/audio.h"
#include "fuzz_audio.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  (void)fathom::formats::looks_like_wav(bytes);
  fathom::formats::AudioLimits limits;
  limits.max_duration_seconds = 60.0;
  auto audio = fathom::formats::decode_wav(bytes, limits);
  if (!audio.ok()) return 0;
  fathom::fuzz::check_decoded_audio(*audio, limits, /*max_mel_samples=*/16000);
  return 0;
}
