#pragma once
// Whisper log-mel spectrogram on a CUDA device (raw-pointer API; the CPU reference is
// formats/mel/log_mel.h and this computes the same features: n_fft 400, hop 160, centred STFT with
// reflect padding, periodic Hann window, power spectrum, mel filters, log10 clamp 1e-10,
// max(x, max - 8), (x + 4) / 4, last frame dropped).
//
// Plain header: no CUDA types, so CPU code may include it. Kernels run on `stream` (a cudaStream_t);
// nothing synchronises, allocates or reads device memory on the host, so a launch may be captured in a
// CUDA graph.
#include <cstddef>
#include <cstdint>

namespace fathom::cuda {

struct LogMelParams {
  // Device pointer to the 16 kHz mono signal; samples [n_valid, n_samples) are read as zeros (pass
  // n_samples = 480000 and n_valid = the real length for the 30-s window).
  const float* samples = nullptr;
  int64_t n_valid = 0;
  int64_t n_samples = 0;       // signal length after padding/trimming; n_frames = n_samples / 160
  // Device pointer to the mel filter bank, row-major [n_mels, 201] float32 (formats::whisper_mel_filters).
  const float* filters = nullptr;
  int n_mels = 80;             // 1..256
  // Device pointer to the output, row-major [n_mels, n_frames] float32.
  float* out = nullptr;
  // Device scratch of log_mel_workspace_bytes() bytes (any alignment of 4).
  void* workspace = nullptr;
};

std::size_t log_mel_workspace_bytes();

// Returns 0 on success, else a cudaError_t value (or -1 for invalid parameters).
int launch_log_mel(const LogMelParams& params, void* stream);

}  // namespace fathom::cuda
