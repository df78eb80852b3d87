#include "formats/fbank/kaldi_fbank.h"

#include <cfloat>
#include <cmath>
#include <complex>

namespace fathom::formats {
namespace {

double mel_scale(double hz) { return 1127.0 * std::log(1.0 + hz / 700.0); }

int round_up_pow2(int n) {
  int p = 1;
  while (p < n) p <<= 1;
  return p;
}

}  // namespace

Result<Fbank> Fbank::create(const FbankOptions& o) {
  using fathom::ErrorCode;
  using fathom::make_error;
  if (o.sample_rate <= 0) return make_error(ErrorCode::kLoadFailed, "fbank: sample_rate must be positive");
  if (o.num_mel_bins < 3) return make_error(ErrorCode::kLoadFailed, "fbank: num_mel_bins must be at least 3");
  const int length = static_cast<int>(std::lround(o.sample_rate * o.frame_length_ms / 1000.0));
  const int shift = static_cast<int>(std::lround(o.sample_rate * o.frame_shift_ms / 1000.0));
  if (length < 2 || shift < 1)
    return make_error(ErrorCode::kLoadFailed, "fbank: frame_length_ms / frame_shift_ms give no samples");
  if (o.window != "povey" && o.window != "hamming" && o.window != "hanning" && o.window != "rectangular")
    return make_error(ErrorCode::kLoadFailed, "fbank: window '" + o.window +
                                                  "' is not supported (povey, hamming, hanning, rectangular)");
  const double nyquist = 0.5 * o.sample_rate;
  const double high = o.high_freq <= 0 ? nyquist + o.high_freq : o.high_freq;
  if (o.low_freq < 0 || high > nyquist || o.low_freq >= high)
    return make_error(ErrorCode::kLoadFailed, "fbank: need 0 <= low_freq < high_freq <= Nyquist (" +
                                                  std::to_string(nyquist) + " Hz)");
  return Fbank(o, length, shift, round_up_pow2(length));
}

Fbank::Fbank(FbankOptions o, int frame_length, int frame_shift, int fft_size)
    : opt_(std::move(o)), frame_length_(frame_length), frame_shift_(frame_shift), fft_size_(fft_size), fft_(fft_size) {
  const double a = 2.0 * M_PI / (frame_length_ - 1);
  window_.resize(frame_length_);
  for (int i = 0; i < frame_length_; ++i) {
    const double hann = 0.5 - 0.5 * std::cos(a * i);
    if (opt_.window == "povey") window_[i] = std::pow(hann, 0.85);
    else if (opt_.window == "hanning") window_[i] = hann;
    else if (opt_.window == "hamming") window_[i] = 0.54 - 0.46 * std::cos(a * i);
    else window_[i] = 1.0;
  }
  const int bins = fft_size_ / 2;  // Kaldi's banks leave out the Nyquist bin
  const double nyquist = 0.5 * opt_.sample_rate;
  const double high = opt_.high_freq <= 0 ? nyquist + opt_.high_freq : opt_.high_freq;
  const double mel_low = mel_scale(opt_.low_freq), mel_high = mel_scale(high);
  const double delta = (mel_high - mel_low) / (opt_.num_mel_bins + 1);
  const double bin_hz = static_cast<double>(opt_.sample_rate) / fft_size_;
  banks_.assign(opt_.num_mel_bins, std::vector<double>(bins, 0.0));
  bank_first_.assign(opt_.num_mel_bins, bins);
  for (int b = 0; b < opt_.num_mel_bins; ++b) {
    const double left = mel_low + b * delta, center = left + delta, right = center + delta;
    for (int i = 0; i < bins; ++i) {
      const double mel = mel_scale(bin_hz * i);
      if (mel > left && mel < right) {
        banks_[b][i] = mel <= center ? (mel - left) / (center - left) : (right - mel) / (right - center);
        if (bank_first_[b] == bins) bank_first_[b] = i;
      }
    }
  }
}

std::vector<float> Fbank::compute(const std::vector<float>& samples, int* frames_out) const {
  const int n = static_cast<int>(samples.size());
  const int frames = n < frame_length_ ? 0 : 1 + (n - frame_length_) / frame_shift_;
  *frames_out = frames;
  const int nb = opt_.num_mel_bins, bins = fft_size_ / 2;
  std::vector<float> out(static_cast<std::size_t>(frames) * nb);
  std::vector<double> frame(fft_size_);
  std::vector<std::complex<double>> spec(fft_size_ / 2 + 1), scratch(fft_size_);
  std::vector<double> power(bins);
  for (int t = 0; t < frames; ++t) {
    const float* src = samples.data() + static_cast<std::size_t>(t) * frame_shift_;
    double mean = 0;
    for (int i = 0; i < frame_length_; ++i) {
      frame[i] = src[i] * opt_.input_scale;
      mean += frame[i];
    }
    mean /= frame_length_;
    if (opt_.remove_dc_offset)
      for (int i = 0; i < frame_length_; ++i) frame[i] -= mean;
    if (opt_.preemphasis != 0) {
      for (int i = frame_length_ - 1; i > 0; --i) frame[i] -= opt_.preemphasis * frame[i - 1];
      frame[0] -= opt_.preemphasis * frame[0];
    }
    for (int i = 0; i < frame_length_; ++i) frame[i] *= window_[i];
    for (int i = frame_length_; i < fft_size_; ++i) frame[i] = 0.0;
    fft_.forward(frame.data(), spec.data(), scratch.data());
    for (int i = 0; i < bins; ++i) power[i] = std::norm(spec[i]);
    float* dst = out.data() + static_cast<std::size_t>(t) * nb;
    for (int b = 0; b < nb; ++b) {
      double e = 0;
      const auto& w = banks_[b];
      for (int i = bank_first_[b]; i < bins; ++i) e += w[i] * power[i];
      dst[b] = static_cast<float>(std::log(std::max(e, static_cast<double>(FLT_EPSILON))));
    }
  }
  return out;
}

std::vector<float> apply_lfr(const std::vector<float>& feats, int frames, int dim, int m, int n, int* out_frames) {
  const int rows = frames == 0 ? 0 : (frames + n - 1) / n;
  *out_frames = rows;
  std::vector<float> out(static_cast<std::size_t>(rows) * m * dim);
  const int left = (m - 1) / 2;
  // Padded frame j: frame 0 for j < left, else frame j - left, clamped to the last frame.
  for (int r = 0; r < rows; ++r)
    for (int k = 0; k < m; ++k) {
      int j = r * n + k - left;
      if (j < 0) j = 0;
      if (j > frames - 1) j = frames - 1;
      std::copy(feats.begin() + static_cast<std::ptrdiff_t>(j) * dim, feats.begin() + static_cast<std::ptrdiff_t>(j + 1) * dim,
                out.begin() + (static_cast<std::ptrdiff_t>(r) * m + k) * dim);
    }
  return out;
}

}  // namespace fathom::formats
