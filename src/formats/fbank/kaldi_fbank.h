#pragma once
// Kaldi-compatible log Mel filterbank features as FunASR's WavFrontend computes them
// (torchaudio.compliance.kaldi.fbank with snip_edges = true, use_energy = false, use_log_fbank = true,
// use_power = true, round_to_power_of_two = true), low-frame-rate stacking (LFR) and global CMVN.
//
// Per frame (frame_length samples every frame_shift): remove the DC offset, pre-emphasis
// x[i] -= k x[i-1] (x[0] -= k x[0]), window, zero-pad to the next power of two, power spectrum, Kaldi
// triangular Mel banks over bins 0..n/2-1 (mel = 1127 ln(1 + f/700), low_freq..high_freq), natural log
// floored at FLT_EPSILON. Input samples in [-1, 1] are first multiplied by input_scale (32768: FunASR
// feeds the int16 range). Computed in double precision; output float32.
#include <string>
#include <vector>

#include "base/error.h"
#include "formats/mel/fft.h"

namespace fathom::formats {

struct FbankOptions {
  int sample_rate = 16000;        // Hz; input must already be at this rate
  int num_mel_bins = 80;          // output bins per frame
  double frame_length_ms = 25.0;  // window length
  double frame_shift_ms = 10.0;   // hop
  std::string window = "povey";   // povey, hamming, hanning or rectangular (Kaldi's definitions)
  double preemphasis = 0.97;      // 0 disables
  bool remove_dc_offset = true;   // subtract each frame's mean first
  double low_freq = 20.0;         // Hz, lower edge of the first bank
  double high_freq = 0.0;         // Hz; <= 0 means Nyquist + high_freq (Kaldi's convention)
  double input_scale = 32768.0;   // samples are multiplied by this before framing
};

class Fbank {
 public:
  // Validates `options` (window name, lengths, frequency range); errors name the option.
  static Result<Fbank> create(const FbankOptions& options);

  // Features of `samples` (mono, sample_rate Hz) as [frames, num_mel_bins] row-major;
  // frames = 1 + (n - frame_length) / frame_shift, 0 when n < frame_length. Thread-safe.
  std::vector<float> compute(const std::vector<float>& samples, int* frames) const;

  const FbankOptions& options() const { return opt_; }
  int frame_length() const { return frame_length_; }

 private:
  Fbank(FbankOptions o, int frame_length, int frame_shift, int fft_size);
  FbankOptions opt_;
  int frame_length_, frame_shift_, fft_size_;
  std::vector<double> window_;
  std::vector<std::vector<double>> banks_;  // [num_mel_bins][fft_size / 2]
  std::vector<int> bank_first_;             // first non-zero bin of each bank
  RealFftPlan fft_;
};

// FunASR's apply_lfr: (m - 1) / 2 copies of frame 0 are prepended, then every n frames m consecutive
// frames are concatenated into one row; the last rows are padded with the last frame.
// `feats` [frames, dim] -> [ceil(frames / n), m * dim]. frames == 0 gives 0 rows.
std::vector<float> apply_lfr(const std::vector<float>& feats, int frames, int dim, int m, int n, int* out_frames);

}  // namespace fathom::formats
