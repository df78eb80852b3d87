#pragma once
// Shared validation of decoder inputs (private to formats/audio).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "formats/audio/audio.h"

namespace fathom::formats::audio_detail {

inline constexpr int kMaxChannels = 64;
inline constexpr int kMinSampleRate = 1000;     // Hz
inline constexpr int kMaxSampleRate = 768000;   // Hz

// Structure of a RIFF/WAVE file (no check of the sample format).
struct WavLayout {
  uint16_t format = 0;  // 1 PCM, 3 IEEE float, or the sub-format of WAVE_FORMAT_EXTENSIBLE
  uint16_t channels = 0, bits = 0, block_align = 0;
  uint32_t sample_rate = 0;
  std::size_t data_offset = 0, data_size = 0;
};
// kInvalidArgument when chunks are malformed or the 'data' chunk declares more bytes than follow.
Result<WavLayout> parse_wav_layout(std::span<const uint8_t> bytes);

inline std::string fmt_double(double v, int decimals = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

inline Status check_size(std::size_t n, const AudioLimits& limits) {
  if (n == 0) return make_error(ErrorCode::kInvalidArgument, "audio file is empty (0 bytes)", "file");
  if (n > limits.max_bytes)
    return make_error(ErrorCode::kTooLarge,
                      "audio file is " + std::to_string(n) + " bytes, over the limit of " +
                          std::to_string(limits.max_bytes) + " bytes",
                      "file");
  return Status::Ok();
}

inline Status check_format(int channels, int sample_rate) {
  if (channels < 1 || channels > kMaxChannels)
    return make_error(ErrorCode::kInvalidArgument,
                      "audio has " + std::to_string(channels) + " channels; supported: 1 to " +
                          std::to_string(kMaxChannels),
                      "file");
  if (sample_rate < kMinSampleRate || sample_rate > kMaxSampleRate)
    return make_error(ErrorCode::kInvalidArgument,
                      "audio sample rate " + std::to_string(sample_rate) + " Hz is outside " +
                          std::to_string(kMinSampleRate) + " to " + std::to_string(kMaxSampleRate) + " Hz",
                      "file");
  return Status::Ok();
}

// Largest sample magnitude kept in decoded audio (float sources may exceed [-1, 1]; this also covers float
// files written in the 16-bit integer scale). Larger values are clipped and NaN / infinity become 0, so the
// log-mel spectrogram stays finite whatever the file holds.
inline constexpr float kMaxSampleMagnitude = 65536.0f;

inline void sanitize_samples(std::vector<float>& samples) {
  for (float& s : samples) {
    if (!std::isfinite(s)) s = 0.0f;
    else if (s > kMaxSampleMagnitude) s = kMaxSampleMagnitude;
    else if (s < -kMaxSampleMagnitude) s = -kMaxSampleMagnitude;
  }
}

// `at_least`: the duration is a lower bound (decoding stopped at the limit).
inline Error too_long(double seconds, const AudioLimits& limits, bool at_least) {
  return make_error(ErrorCode::kTooLarge,
                    std::string("audio is ") + (at_least ? "more than " : "") + fmt_double(seconds) +
                        " s long, over the limit of " + fmt_double(limits.max_duration_seconds) + " s",
                    "file");
}

}  // namespace fathom::formats::audio_detail
