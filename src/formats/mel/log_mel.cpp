// CPU log-mel spectrogram (see log_mel.h).
#include "formats/mel/log_mel.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "formats/mel/fft.h"

namespace fathom::formats {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kMaxMels = 256;
constexpr double kSampleRate = 16000.0;

// Slaney mel scale (linear below 1 kHz, logarithmic above), as transformers.audio_utils.
double hz_to_mel(double hz) {
  const double min_log_hz = 1000.0, min_log_mel = 15.0, logstep = 27.0 / std::log(6.4);
  return hz >= min_log_hz ? min_log_mel + std::log(hz / min_log_hz) * logstep : 3.0 * hz / 200.0;
}
double mel_to_hz(double mel) {
  const double min_log_hz = 1000.0, min_log_mel = 15.0, logstep = std::log(6.4) / 27.0;
  return mel >= min_log_mel ? min_log_hz * std::exp(logstep * (mel - min_log_mel)) : 200.0 * mel / 3.0;
}

// Double-precision filters [n_mels, 201] with each row's non-zero span.
struct MelBank {
  int n_mels = 0;
  std::vector<double> weights;
  std::vector<int> first, last;  // inclusive bin range of row m's non-zeros
};

MelBank build_bank(int n_mels) {
  MelBank b;
  b.n_mels = n_mels;
  b.weights.assign(static_cast<std::size_t>(n_mels) * kMelFreqBins, 0.0);
  b.first.assign(n_mels, 0);
  b.last.assign(n_mels, -1);
  // filter_freqs = mel_to_hz(linspace(mel(0), mel(8000), n_mels + 2)); fft_freqs = linspace(0, 8000, 201).
  const double mel_min = hz_to_mel(0.0), mel_max = hz_to_mel(kSampleRate / 2);
  std::vector<double> f(static_cast<std::size_t>(n_mels) + 2);
  const int n_pts = n_mels + 2;
  for (int i = 0; i < n_pts; ++i) {
    // numpy.linspace: start + i * step, with the last point exactly `stop`.
    double mel = i == n_pts - 1 ? mel_max : mel_min + i * ((mel_max - mel_min) / (n_pts - 1));
    f[i] = mel_to_hz(mel);
  }
  const double bin_step = (kSampleRate / 2) / (kMelFreqBins - 1);
  for (int m = 0; m < n_mels; ++m) {
    const double enorm = 2.0 / (f[m + 2] - f[m]);
    for (int k = 0; k < kMelFreqBins; ++k) {
      double fft_freq = k == kMelFreqBins - 1 ? kSampleRate / 2 : k * bin_step;
      double down = (fft_freq - f[m]) / (f[m + 1] - f[m]);     // -slopes[:, m] / diff[m]
      double up = (f[m + 2] - fft_freq) / (f[m + 2] - f[m + 1]);  // slopes[:, m + 2] / diff[m + 1]
      double w = std::max(0.0, std::min(down, up)) * enorm;
      b.weights[static_cast<std::size_t>(m) * kMelFreqBins + k] = w;
      if (w != 0.0) {
        if (b.last[m] < 0) b.first[m] = k;
        b.last[m] = k;
      }
    }
  }
  return b;
}

const MelBank& bank(int n_mels) {
  static std::mutex mu;
  static std::vector<std::unique_ptr<MelBank>> cache(kMaxMels + 1);
  std::lock_guard<std::mutex> lock(mu);
  if (!cache[n_mels]) cache[n_mels] = std::make_unique<MelBank>(build_bank(n_mels));
  return *cache[n_mels];
}

const std::vector<double>& hann_window() {
  static const std::vector<double> w = [] {
    std::vector<double> v(kMelNFft);
    for (int n = 0; n < kMelNFft; ++n) v[n] = 0.5 - 0.5 * std::cos(2.0 * kPi * n / kMelNFft);  // periodic
    return v;
  }();
  return w;
}

const RealFftPlan& fft_plan() {
  static const RealFftPlan plan(kMelNFft);
  return plan;
}

// Index into a signal of length n after reflect padding (numpy/torch "reflect": no edge repeat),
// folding repeatedly for signals shorter than the padding.
int64_t reflect_index(int64_t i, int64_t n) {
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

// log10 mel energies of frames [begin, end) into out (row-major [n_mels, n_frames]).
void frames_log_mel(const float* x, int64_t n, const MelBank& b, int64_t n_frames, int64_t begin, int64_t end,
                    float* out) {
  const auto& window = hann_window();
  const auto& plan = fft_plan();
  std::vector<double> frame(kMelNFft);
  std::vector<std::complex<double>> spec(kMelFreqBins), scratch(kMelNFft);
  std::vector<double> power(kMelFreqBins);
  const int64_t pad = kMelNFft / 2;
  for (int64_t t = begin; t < end; ++t) {
    const int64_t start = t * kMelHop - pad;  // position of the window's first sample in the signal
    if (start >= 0 && start + kMelNFft <= n) {
      for (int j = 0; j < kMelNFft; ++j) frame[j] = window[j] * x[start + j];
    } else {
      for (int j = 0; j < kMelNFft; ++j) frame[j] = window[j] * x[reflect_index(start + j, n)];
    }
    plan.forward(frame.data(), spec.data(), scratch.data());
    for (int k = 0; k < kMelFreqBins; ++k) power[k] = std::norm(spec[k]);
    for (int m = 0; m < b.n_mels; ++m) {
      const double* w = &b.weights[static_cast<std::size_t>(m) * kMelFreqBins];
      double acc = 0.0;
      for (int k = b.first[m]; k <= b.last[m]; ++k) acc += w[k] * power[k];
      out[static_cast<std::size_t>(m) * n_frames + t] = static_cast<float>(std::log10(std::max(acc, 1e-10)));
    }
  }
}

Status check_mels(int n_mels) {
  if (n_mels < 1 || n_mels > kMaxMels)
    return make_error(ErrorCode::kInvalidArgument,
                      "n_mels is " + std::to_string(n_mels) + "; supported: 1 to " + std::to_string(kMaxMels),
                      "n_mels");
  return Status::Ok();
}

}  // namespace

Result<std::vector<float>> whisper_mel_filters(int n_mels) {
  FATHOM_TRY(check_mels(n_mels));
  const MelBank& b = bank(n_mels);
  return std::vector<float>(b.weights.begin(), b.weights.end());
}

Result<LogMel> whisper_log_mel(std::span<const float> samples, const LogMelOptions& options) {
  FATHOM_TRY(check_mels(options.n_mels));
  std::vector<float> padded;
  std::span<const float> x = samples;
  if (options.pad_or_trim_samples > 0) {
    const std::size_t target = static_cast<std::size_t>(options.pad_or_trim_samples);
    if (samples.size() != target) {
      padded.assign(target, 0.0f);
      std::copy_n(samples.begin(), std::min(target, samples.size()), padded.begin());
      x = padded;
    }
  }
  const int64_t n = static_cast<int64_t>(x.size());
  const int64_t n_frames = n / kMelHop;  // 1 + n / hop centred frames, the last one dropped
  if (n_frames < 1)
    return make_error(ErrorCode::kInvalidArgument,
                      "audio of " + std::to_string(n) + " samples is shorter than one mel frame (" +
                          std::to_string(kMelHop) + " samples)",
                      "file");
  const MelBank& b = bank(options.n_mels);
  LogMel out;
  out.n_mels = options.n_mels;
  out.n_frames = n_frames;
  out.data.resize(static_cast<std::size_t>(options.n_mels) * n_frames);

  const int threads = static_cast<int>(std::clamp<int64_t>(options.threads, 1, std::max<int64_t>(1, n_frames / 64)));
  if (threads == 1) {
    frames_log_mel(x.data(), n, b, n_frames, 0, n_frames, out.data.data());
  } else {
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i) {
      int64_t begin = n_frames * i / threads, end = n_frames * (i + 1) / threads;
      pool.emplace_back(frames_log_mel, x.data(), n, std::cref(b), n_frames, begin, end, out.data.data());
    }
    for (auto& t : pool) t.join();
  }
  const float max_val = *std::max_element(out.data.begin(), out.data.end());
  const float floor_val = max_val - 8.0f;
  for (float& v : out.data) v = (std::max(v, floor_val) + 4.0f) / 4.0f;
  return out;
}

}  // namespace fathom::formats
