#pragma once
// Audio decoding for speech-to-text: bytes of an uploaded file -> 16 kHz mono float32 samples.
//
// With FFmpeg (FATHOM_WITH_FFMPEG=1) every format OpenAI's audio endpoints accept is decoded: flac, mp3,
// mp4, mpeg, mpga, m4a, ogg (vorbis, opus, flac), wav and webm. The container is probed from the bytes
// (the file name is not needed). Without FFmpeg only RIFF/WAVE PCM (8/16/24/32-bit integer, 32/64-bit
// float) is decoded by a built-in reader; any other format is a kUnsupported error.
//
// Channels are averaged (mean downmix) and the signal is resampled to 16 kHz. Samples are in [-1, 1]
// for integer sources (int16 s -> s / 32768, as numpy-based reference pipelines do).
//
// Errors (never a crash, never an unbounded loop):
//   kTooLarge        input bytes > limits.max_bytes, or audio longer than limits.max_duration_seconds;
//                    the message states the limit and the actual (or at-least) value.
//   kInvalidArgument empty input, unknown or corrupt data, truncated file, no audio stream, absurd
//                    channel count or sample rate, no samples decoded.
//   kUnsupported     a non-WAV format in a build without FFmpeg, or a WAV encoding the reader lacks.
//
// Thread-safety: decode_audio is reentrant; calls on different threads share no state.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"

namespace fathom::formats {

inline constexpr int kWhisperSampleRate = 16000;

struct AudioLimits {
  // Largest accepted upload, in bytes (OpenAI's limit is 25 MB).
  std::size_t max_bytes = 25u * 1000u * 1000u;
  // Longest accepted audio, in seconds of decoded signal.
  double max_duration_seconds = 3600.0;
  // Safety net against pathological files: decoding that takes longer than this (wall clock) is
  // abandoned with a kInvalidArgument error. Normal files decode hundreds of times faster than real time.
  double max_decode_wall_seconds = 120.0;
};

struct AudioBuffer {
  std::vector<float> samples;       // mono, sample_rate Hz
  int sample_rate = kWhisperSampleRate;
  // What the input was, for logs and error messages.
  std::string source_format;        // container name, e.g. "mp3", "ogg", "wav"
  std::string source_codec;         // codec name, e.g. "opus", "pcm_s16le"
  int source_sample_rate = 0;       // Hz
  int source_channels = 0;
  double duration_seconds() const { return static_cast<double>(samples.size()) / sample_rate; }
};

// Decodes `bytes` (a whole audio file in memory) to 16 kHz mono float32.
Result<AudioBuffer> decode_audio(std::span<const uint8_t> bytes, const AudioLimits& limits = {});

// The built-in RIFF/WAVE reader used when FFmpeg is absent (also callable directly). Same output and
// error contract as decode_audio.
Result<AudioBuffer> decode_wav(std::span<const uint8_t> bytes, const AudioLimits& limits = {});

// True when `bytes` start like a RIFF/WAVE file.
bool looks_like_wav(std::span<const uint8_t> bytes);

// Resamples mono `in` from `in_rate` to `out_rate` Hz with a windowed-sinc (Kaiser) low-pass
// interpolator (anti-aliased when downsampling). Output length = round(in.size() * out_rate / in_rate).
std::vector<float> resample_mono(std::span<const float> in, int in_rate, int out_rate);

}  // namespace fathom::formats
