#pragma once
// Whisper's log-mel spectrogram on the CPU, equal to transformers' WhisperFeatureExtractor (default
// settings: n_fft 400, hop 160, 16 kHz) within 1e-4.
//
// Pipeline: pad/trim the 16 kHz mono signal (optional) -> centred STFT (reflect padding of n_fft/2 on
// both sides, periodic Hann window) -> power spectrum (201 bins) -> slaney-normalised slaney-scale mel
// filter bank (0..8000 Hz) -> log10(max(x, 1e-10)) -> max(x, global_max - 8) -> (x + 4) / 4.
// The last STFT frame is dropped, as the feature extractor does, so n_frames = n_samples / 160.
//
// Thread-safety: all functions are reentrant.
#include <cstdint>
#include <span>
#include <vector>

#include "base/error.h"

namespace fathom::formats {

inline constexpr int kMelNFft = 400;              // samples per STFT window (25 ms)
inline constexpr int kMelHop = 160;               // samples between frames (10 ms)
inline constexpr int kMelFreqBins = kMelNFft / 2 + 1;  // 201
inline constexpr int64_t kWhisperChunkSamples = 480000;  // 30 s at 16 kHz
inline constexpr int kWhisperChunkFrames = 3000;

// Mel filter bank, row-major [n_mels, 201] float32, equal to transformers'
// mel_filter_bank(201, n_mels, 0.0, 8000.0, 16000, norm="slaney", mel_scale="slaney").T
// (and to OpenAI whisper's mel_filters.npz, which librosa produced). n_mels in [1, 256].
Result<std::vector<float>> whisper_mel_filters(int n_mels);

struct LogMelOptions {
  int n_mels = 80;  // 80 (Whisper v1/v2) or 128 (large-v3); any value in [1, 256] works
  // The input is zero-padded or truncated to this many samples first (the feature extractor's default
  // padding="max_length", 30 s). 0 keeps the input length: the long-audio variant, where the whole
  // signal is one spectrogram normalised by its global maximum (as transformers does for long-form
  // transcription with padding="longest", truncation=False).
  int64_t pad_or_trim_samples = kWhisperChunkSamples;
  // Worker threads for the STFT (1 = the calling thread only). The result does not depend on it.
  int threads = 1;
};

// Row-major [n_mels, n_frames] float32 features.
struct LogMel {
  std::vector<float> data;
  int n_mels = 0;
  int64_t n_frames = 0;
  float at(int mel, int64_t frame) const { return data[static_cast<std::size_t>(mel * n_frames + frame)]; }
};

// Features of `samples` (16 kHz mono). Errors (kInvalidArgument): n_mels out of range, or (with
// pad_or_trim_samples == 0) fewer than 160 samples.
Result<LogMel> whisper_log_mel(std::span<const float> samples, const LogMelOptions& options = {});

// The 30-s window: features of `samples` padded/truncated to 480000 samples -> [n_mels, 3000].
inline Result<LogMel> whisper_log_mel_30s(std::span<const float> samples, int n_mels) {
  LogMelOptions o;
  o.n_mels = n_mels;
  return whisper_log_mel(samples, o);
}

// Features of a long signal without padding or truncation -> [n_mels, n_samples / 160].
inline Result<LogMel> whisper_log_mel_long(std::span<const float> samples, int n_mels, int threads = 1) {
  LogMelOptions o;
  o.n_mels = n_mels;
  o.pad_or_trim_samples = 0;
  o.threads = threads;
  return whisper_log_mel(samples, o);
}

}  // namespace fathom::formats
