#pragma once
// A small mixed-radix FFT (any length whose factors are handled: 2, 3, 4, 5 and a generic odd-radix
// butterfly for the rest) for the log-mel front end. Double precision.
//
// Thread-safety: a plan is immutable after construction; forward() may run on many threads at once as
// long as each passes its own scratch/output buffers.
#include <complex>
#include <cstddef>
#include <vector>

namespace fathom::formats {

class FftPlan {
 public:
  explicit FftPlan(int n);
  int size() const { return n_; }
  // out[k] = sum_j in[j] * exp(-2 pi i j k / n); `in` and `out` hold n values and must not alias.
  void forward(const std::complex<double>* in, std::complex<double>* out) const;

 private:
  void work(std::complex<double>* out, const std::complex<double>* in, std::size_t fstride, const int* factors) const;
  void butterfly(std::complex<double>* out, std::size_t fstride, int m, int p) const;

  int n_;
  std::vector<int> factors_;  // pairs (radix p, remaining length m)
  std::vector<std::complex<double>> twiddles_;  // exp(-2 pi i k / n), k < n
};

// Real-input FFT of even length n through one complex FFT of n/2.
class RealFftPlan {
 public:
  explicit RealFftPlan(int n);
  int size() const { return n_; }
  // Spectrum bins 0..n/2 of real `in` (n values) into `out` (n/2 + 1 values). `scratch` holds n values.
  void forward(const double* in, std::complex<double>* out, std::complex<double>* scratch) const;

 private:
  int n_;
  FftPlan half_;
  std::vector<std::complex<double>> twiddles_;  // exp(-2 pi i k / n), k <= n/2
};

}  // namespace fathom::formats
