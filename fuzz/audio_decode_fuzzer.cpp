// Fuzzes decode_audio (FFmpeg's demuxers and decoders on in-memory bytes, as an upload reaches them) and
// the log-mel front end on whatever decodes.
// Checked besides "no crash": output is 16 kHz, finite, within the duration limit; features are finite.
#include <span>

#include "formats/audio/audio.h"
#include "fuzz_audio.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fathom::formats::AudioLimits limits;
  limits.max_duration_seconds = 60.0;
  limits.max_decode_wall_seconds = 10.0;
  auto audio = fathom::formats::decode_audio(std::span<const uint8_t>(data, size), limits);
  if (!audio.ok()) return 0;
  fathom::fuzz::check_decoded_audio(*audio, limits, /*max_mel_samples=*/16000 * 5);
  return 0;
}
