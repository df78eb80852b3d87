// Mixed-radix decimation-in-time FFT (the recursive structure of KISS FFT).
#include "formats/mel/fft.h"

#include <cmath>
#include <stdexcept>

namespace fathom::formats {
namespace {
constexpr double kPi = 3.14159265358979323846;
using cd = std::complex<double>;
}  // namespace

FftPlan::FftPlan(int n) : n_(n) {
  if (n < 1) throw std::invalid_argument("FftPlan: length must be positive");
  twiddles_.resize(static_cast<std::size_t>(n));
  for (int k = 0; k < n; ++k) {
    double a = -2.0 * kPi * k / n;
    twiddles_[k] = cd(std::cos(a), std::sin(a));
  }
  // Radix 4 first, then 2, 3, 5, then odd factors.
  int rem = n;
  int p = 4;
  while (rem > 1) {
    while (rem % p != 0) {
      if (p == 4) p = 2;
      else if (p == 2) p = 3;
      else p += 2;
      if (p * p > rem) p = rem;
    }
    rem /= p;
    factors_.push_back(p);
    factors_.push_back(rem);
  }
  if (factors_.empty()) factors_ = {1, 1};
}

void FftPlan::forward(const cd* in, cd* out) const {
  if (n_ == 1) {
    out[0] = in[0];
    return;
  }
  work(out, in, 1, factors_.data());
}

void FftPlan::work(cd* out, const cd* in, std::size_t fstride, const int* factors) const {
  const int p = factors[0], m = factors[1];
  cd* const begin = out;
  cd* const end = out + static_cast<std::ptrdiff_t>(p) * m;
  if (m == 1) {
    for (; out != end; ++out, in += fstride) *out = *in;
  } else {
    for (; out != end; out += m, in += fstride) work(out, in, fstride * p, factors + 2);
  }
  butterfly(begin, fstride, m, p);
}

void FftPlan::butterfly(cd* out, std::size_t fstride, int m, int p) const {
  const cd* tw = twiddles_.data();
  switch (p) {
    case 2:
      for (int k = 0; k < m; ++k) {
        cd t = out[k + m] * tw[k * fstride];
        out[k + m] = out[k] - t;
        out[k] += t;
      }
      return;
    case 4:
      for (int k = 0; k < m; ++k) {
        cd a0 = out[k];
        cd a1 = out[k + m] * tw[k * fstride];
        cd a2 = out[k + 2 * m] * tw[2 * k * fstride];
        cd a3 = out[k + 3 * m] * tw[3 * k * fstride];
        cd s0 = a0 + a2, s1 = a0 - a2, s2 = a1 + a3, s3 = a1 - a3;
        cd s3_mi(s3.imag(), -s3.real());  // -i * s3
        out[k] = s0 + s2;
        out[k + m] = s1 + s3_mi;
        out[k + 2 * m] = s0 - s2;
        out[k + 3 * m] = s1 - s3_mi;
      }
      return;
    case 5: {
      const cd ya = tw[fstride * m], yb = tw[2 * fstride * m];  // exp(-2 pi i / 5), exp(-4 pi i / 5)
      for (int u = 0; u < m; ++u) {
        cd s0 = out[u];
        cd s1 = out[u + m] * tw[u * fstride];
        cd s2 = out[u + 2 * m] * tw[2 * u * fstride];
        cd s3 = out[u + 3 * m] * tw[3 * u * fstride];
        cd s4 = out[u + 4 * m] * tw[4 * u * fstride];
        cd s7 = s1 + s4, s10 = s1 - s4, s8 = s2 + s3, s9 = s2 - s3;
        out[u] = s0 + s7 + s8;
        cd s5 = s0 + cd(s7.real() * ya.real() + s8.real() * yb.real(), s7.imag() * ya.real() + s8.imag() * yb.real());
        cd s6(s10.imag() * ya.imag() + s9.imag() * yb.imag(), -s10.real() * ya.imag() - s9.real() * yb.imag());
        out[u + m] = s5 - s6;
        out[u + 4 * m] = s5 + s6;
        cd s11 = s0 + cd(s7.real() * yb.real() + s8.real() * ya.real(), s7.imag() * yb.real() + s8.imag() * ya.real());
        cd s12(-s10.imag() * yb.imag() + s9.imag() * ya.imag(), s10.real() * yb.imag() - s9.real() * ya.imag());
        out[u + 2 * m] = s11 + s12;
        out[u + 3 * m] = s11 - s12;
      }
      return;
    }
    default: {
      std::vector<cd> scratch(static_cast<std::size_t>(p));
      const std::size_t n = static_cast<std::size_t>(n_);
      for (int u = 0; u < m; ++u) {
        for (int q = 0, k = u; q < p; ++q, k += m) scratch[q] = out[k];
        for (int q1 = 0, k = u; q1 < p; ++q1, k += m) {
          std::size_t idx = 0;
          cd acc = scratch[0];
          for (int q = 1; q < p; ++q) {
            idx += fstride * k;
            if (idx >= n) idx %= n;
            acc += scratch[q] * tw[idx];
          }
          out[k] = acc;
        }
      }
    }
  }
}

RealFftPlan::RealFftPlan(int n) : n_(n), half_(n / 2 > 0 ? n / 2 : 1) {
  if (n < 2 || n % 2 != 0) throw std::invalid_argument("RealFftPlan: length must be even and >= 2");
  twiddles_.resize(static_cast<std::size_t>(n / 2 + 1));
  for (int k = 0; k <= n / 2; ++k) {
    double a = -2.0 * kPi * k / n;
    twiddles_[k] = cd(std::cos(a), std::sin(a));
  }
}

void RealFftPlan::forward(const double* in, cd* out, cd* scratch) const {
  const int h = n_ / 2;
  cd* z = scratch;       // packed input: z[j] = x[2j] + i x[2j+1]
  cd* zf = scratch + h;  // its spectrum
  for (int j = 0; j < h; ++j) z[j] = cd(in[2 * j], in[2 * j + 1]);
  half_.forward(z, zf);
  for (int k = 0; k <= h; ++k) {
    cd a = zf[k == h ? 0 : k];
    cd b = std::conj(zf[k == 0 ? 0 : h - k]);
    cd even = 0.5 * (a + b);
    cd odd = cd(0.0, -0.5) * (a - b);
    out[k] = even + twiddles_[k] * odd;
  }
}

}  // namespace fathom::formats
