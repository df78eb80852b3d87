// Windowed-sinc resampler for the built-in WAV path (FFmpeg's libswresample is used when available).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "formats/audio/audio.h"

namespace fathom::formats {
namespace {

constexpr int kHalfTaps = 16;       // zero crossings of the sinc on each side (of the low-pass cutoff)
constexpr double kKaiserBeta = 8.6;  // ~ -90 dB side lobes
constexpr double kPi = 3.14159265358979323846;

double bessel_i0(double x) {
  double sum = 1.0, term = 1.0, q = x * x / 4.0;
  for (int k = 1; k < 50; ++k) {
    term *= q / (static_cast<double>(k) * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

// Filter weight at distance `d` input samples from the output instant; `scale` = cutoff relative to
// the input Nyquist (<= 1), `half_width` = support in input samples.
double kernel(double d, double scale, double half_width, double i0_beta) {
  if (std::abs(d) >= half_width) return 0.0;
  double x = d * scale;
  double sinc = x == 0.0 ? 1.0 : std::sin(kPi * x) / (kPi * x);
  double r = d / half_width;
  double w = bessel_i0(kKaiserBeta * std::sqrt(std::max(0.0, 1.0 - r * r))) / i0_beta;
  return scale * sinc * w;
}

}  // namespace

std::vector<float> resample_mono(std::span<const float> in, int in_rate, int out_rate) {
  if (in_rate == out_rate || in.empty() || in_rate <= 0 || out_rate <= 0)
    return std::vector<float>(in.begin(), in.end());
  const int64_t n_in = static_cast<int64_t>(in.size());
  const int64_t n_out = (n_in * out_rate + in_rate / 2) / in_rate;
  // Cutoff a little under the lower Nyquist so the transition band stays out of the passband edge.
  const double scale = std::min(1.0, static_cast<double>(out_rate) / in_rate) * 0.97;
  const double half_width = kHalfTaps / scale;
  const double i0_beta = bessel_i0(kKaiserBeta);
  const int taps = static_cast<int>(std::ceil(half_width)) * 2 + 1;
  // Output i sits at input position i * in_rate / out_rate = base + phase / (out_rate / g).
  const int g = std::gcd(in_rate, out_rate);
  const int64_t step = in_rate / g, phases = out_rate / g;
  std::vector<float> out(static_cast<std::size_t>(n_out));
  const int64_t left = taps / 2;
  auto sample = [&](int64_t j) { return (j >= 0 && j < n_in) ? in[static_cast<std::size_t>(j)] : 0.0f; };
  if (phases <= 4096) {
    // Polyphase table: weights[p][k] for input base - left + k.
    std::vector<float> table(static_cast<std::size_t>(phases * taps));
    for (int64_t p = 0; p < phases; ++p) {
      double frac = static_cast<double>(p) / phases;
      for (int k = 0; k < taps; ++k)
        table[p * taps + k] = static_cast<float>(kernel(static_cast<double>(k - left) - frac, scale, half_width, i0_beta));
    }
    for (int64_t i = 0; i < n_out; ++i) {
      int64_t pos = i * step;
      int64_t base = pos / phases, p = pos % phases;
      const float* w = &table[p * taps];
      double acc = 0.0;
      int64_t j0 = base - left;
      if (j0 >= 0 && j0 + taps <= n_in) {
        const float* x = &in[static_cast<std::size_t>(j0)];
        for (int k = 0; k < taps; ++k) acc += static_cast<double>(w[k]) * x[k];
      } else {
        for (int k = 0; k < taps; ++k) acc += static_cast<double>(w[k]) * sample(j0 + k);
      }
      out[static_cast<std::size_t>(i)] = static_cast<float>(acc);
    }
  } else {
    for (int64_t i = 0; i < n_out; ++i) {
      double t = static_cast<double>(i) * in_rate / out_rate;
      int64_t base = static_cast<int64_t>(std::floor(t));
      double acc = 0.0;
      for (int64_t j = base - left; j <= base + left + 1; ++j)
        acc += kernel(static_cast<double>(j) - t, scale, half_width, i0_beta) * sample(j);
      out[static_cast<std::size_t>(i)] = static_cast<float>(acc);
    }
  }
  return out;
}

}  // namespace fathom::formats
