// Built-in RIFF/WAVE PCM reader (the decoder of builds without FFmpeg).
#include <cmath>
#include <cstring>
#include <string>

#include "formats/audio/audio.h"
#include "formats/audio/limits.h"

namespace fathom::formats {
namespace {

using audio_detail::check_format;
using audio_detail::check_size;
using audio_detail::WavLayout;

uint32_t le32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24); }
uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

Error invalid(const std::string& what) {
  return make_error(ErrorCode::kInvalidArgument, "invalid WAV file: " + what, "file");
}

constexpr uint16_t kFormatPcm = 1, kFormatFloat = 3, kFormatExtensible = 0xFFFE;

float read_sample(const uint8_t* p, bool is_float, int bytes) {
  if (is_float) {
    float f;
    if (bytes == 4) {
      std::memcpy(&f, p, 4);
    } else {
      double d;
      std::memcpy(&d, p, 8);
      f = static_cast<float>(d);
    }
    return std::isfinite(f) ? f : 0.0f;  // NaN / inf would poison the whole spectrogram
  }
  switch (bytes) {
    case 1: return (static_cast<int>(p[0]) - 128) / 128.0f;  // 8-bit WAV is unsigned
    case 2: return static_cast<int16_t>(le16(p)) / 32768.0f;
    case 3: {
      int32_t v = static_cast<int32_t>((p[0] << 8) | (p[1] << 16) | (static_cast<uint32_t>(p[2]) << 24)) >> 8;
      return static_cast<float>(v / 8388608.0);
    }
    default: return static_cast<float>(static_cast<int32_t>(le32(p)) / 2147483648.0);
  }
}

}  // namespace

bool looks_like_wav(std::span<const uint8_t> b) {
  return b.size() >= 12 && std::memcmp(b.data(), "RIFF", 4) == 0 && std::memcmp(b.data() + 8, "WAVE", 4) == 0;
}

Result<WavLayout> audio_detail::parse_wav_layout(std::span<const uint8_t> bytes) {
  if (!looks_like_wav(bytes)) return invalid("no RIFF/WAVE header");
  const uint8_t* p = bytes.data();
  const std::size_t n = bytes.size();
  std::size_t pos = 12;
  bool have_fmt = false;
  WavLayout w;
  // Each chunk consumes at least 8 bytes, so the walk ends.
  while (pos + 8 <= n) {
    const uint8_t* hdr = p + pos;
    uint32_t size = le32(hdr + 4);
    std::size_t body = pos + 8;
    std::size_t avail = n - body;
    if (std::memcmp(hdr, "fmt ", 4) == 0) {
      if (size < 16 || size > avail) return invalid("'fmt ' chunk of " + std::to_string(size) + " bytes is malformed");
      w.format = le16(p + body);
      w.channels = le16(p + body + 2);
      w.sample_rate = le32(p + body + 4);
      w.block_align = le16(p + body + 12);
      w.bits = le16(p + body + 14);
      if (w.format == kFormatExtensible) {
        if (size < 40) return invalid("WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk is shorter than 40 bytes");
        w.format = le16(p + body + 24);  // first two bytes of the sub-format GUID
      }
      have_fmt = true;
    } else if (std::memcmp(hdr, "data", 4) == 0) {
      if (!have_fmt) return invalid("'data' chunk before 'fmt ' chunk");
      if (size <= avail) {
        w.data_size = size;
      } else if (size == 0xFFFFFFFFu || size == 0) {  // streamed WAV: size unknown, take the rest
        w.data_size = avail;
      } else {
        return invalid("truncated: the 'data' chunk declares " + std::to_string(size) + " bytes but only " +
                       std::to_string(avail) + " follow");
      }
      w.data_offset = body;
      return w;
    }
    if (size > avail) return invalid("truncated chunk");
    pos = body + size + (size & 1u);
  }
  if (!have_fmt) return invalid("no 'fmt ' chunk");
  return invalid("no 'data' chunk");
}

Result<AudioBuffer> decode_wav(std::span<const uint8_t> bytes, const AudioLimits& limits) {
  FATHOM_TRY(check_size(bytes.size(), limits));
  FATHOM_ASSIGN_OR_RETURN(WavLayout w, audio_detail::parse_wav_layout(bytes));
  const uint16_t format = w.format, channels = w.channels, bits = w.bits, block_align = w.block_align;
  const uint32_t rate = w.sample_rate;
  const uint8_t* data = bytes.data() + w.data_offset;
  const std::size_t data_size = w.data_size;
  bool is_float = format == kFormatFloat;
  if (format != kFormatPcm && format != kFormatFloat)
    return make_error(ErrorCode::kUnsupported,
                      "WAV sample format " + std::to_string(format) +
                          " is not supported by the built-in reader (PCM integer or IEEE float only)",
                      "file");
  FATHOM_TRY(check_format(channels, static_cast<int>(rate > 0x7fffffffu ? 0 : rate)));
  bool bits_ok = is_float ? (bits == 32 || bits == 64) : (bits == 8 || bits == 16 || bits == 24 || bits == 32);
  if (!bits_ok)
    return make_error(ErrorCode::kUnsupported,
                      std::string("WAV ") + (is_float ? "float" : "integer") + " samples of " + std::to_string(bits) +
                          " bits are not supported",
                      "file");
  const int sample_bytes = bits / 8;
  if (block_align != channels * sample_bytes)
    return invalid("block align " + std::to_string(block_align) + " does not match " + std::to_string(channels) +
                   " channels of " + std::to_string(bits) + " bits");
  const std::size_t frames = data_size / block_align;
  if (frames == 0) return invalid("no samples in the 'data' chunk");
  double seconds = static_cast<double>(frames) / rate;
  if (seconds > limits.max_duration_seconds) return audio_detail::too_long(seconds, limits, false);

  std::vector<float> mono(frames);
  const float inv_channels = 1.0f / channels;
  for (std::size_t f = 0; f < frames; ++f) {
    const uint8_t* frame = data + f * block_align;
    float acc = 0.0f;
    for (int c = 0; c < channels; ++c) acc += read_sample(frame + c * sample_bytes, is_float, sample_bytes);
    mono[f] = channels == 1 ? acc : acc * inv_channels;
  }
  AudioBuffer out;
  out.samples = resample_mono(mono, static_cast<int>(rate), kWhisperSampleRate);
  // Huge finite float samples can overflow in the downmix or the resampler.
  audio_detail::sanitize_samples(out.samples);
  if (out.samples.empty())
    return invalid(std::to_string(frames) + " sample frame(s) at " + std::to_string(rate) +
                   " Hz are too short to give any sample at 16 kHz");
  out.source_format = "wav";
  out.source_codec = is_float ? "pcm_f" + std::to_string(bits) + "le"
                              : (bits == 8 ? std::string("pcm_u8") : "pcm_s" + std::to_string(bits) + "le");
  out.source_sample_rate = static_cast<int>(rate);
  out.source_channels = channels;
  return out;
}

}  // namespace fathom::formats
