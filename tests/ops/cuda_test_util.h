#pragma once
// Helpers for the CUDA op tests: device detection, host<->device transfers with dtype conversion, and
// error metrics. Every CUDA test starts with FATHOM_REQUIRE_CUDA() (skips when no device is present).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "backends/cuda/check.h"
#include "backends/cuda/device.h"
#include "base/dtype.h"
#include "base/half.h"

#define FATHOM_REQUIRE_CUDA()                                             \
  do {                                                                    \
    if (::fathom::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

namespace fathom::cuda::test {

inline const DType kFloatTypes[] = {DType::kF32, DType::kF16, DType::kBF16};

// Relative L2 tolerance of a kernel's output against an f64 reference computed on dtype-rounded inputs.
inline double tolerance(DType d) { return d == DType::kF32 ? 2e-6 : d == DType::kF16 ? 2e-3 : 1.2e-2; }

// Rounds through the dtype (what the device will see).
inline float round_to(DType d, float x) {
  if (d == DType::kF16) return f16_to_f32(f32_to_f16(x));
  if (d == DType::kBF16) return bf16_to_f32(f32_to_bf16(x));
  return x;
}

inline std::vector<float> random_vec(std::size_t n, DType d, std::mt19937& rng, float scale = 1.f) {
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = round_to(d, dist(rng));
  // Poison check: no test input is all zeros.
  return v;
}

// Owning device memory holding `n` elements of dtype.
class DevMem {
 public:
  DevMem(std::size_t bytes) { FATHOM_CUDA_CHECK(cudaMalloc(&p_, bytes ? bytes : 1)); bytes_ = bytes; }
  ~DevMem() { cudaFree(p_); }
  DevMem(DevMem&& o) noexcept : p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr; }
  DevMem(const DevMem&) = delete;
  DevMem& operator=(const DevMem&) = delete;
  void* get() const { return p_; }
  template <typename T> T* as() const { return static_cast<T*>(p_); }
  std::size_t bytes() const { return bytes_; }
  // Fills with a NaN-like poison pattern (0xFF bytes) so unwritten outputs show up.
  void poison() { FATHOM_CUDA_CHECK(cudaMemset(p_, 0xFF, bytes_)); }

 private:
  void* p_ = nullptr;
  std::size_t bytes_ = 0;
};

inline DevMem upload(const std::vector<float>& v, DType d) {
  DevMem m(v.size() * dtype_size(d));
  std::vector<uint8_t> raw(m.bytes());
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (d == DType::kF32) std::memcpy(raw.data() + 4 * i, &v[i], 4);
    else {
      uint16_t h = d == DType::kF16 ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
      std::memcpy(raw.data() + 2 * i, &h, 2);
    }
  }
  FATHOM_CUDA_CHECK(cudaMemcpy(m.get(), raw.data(), raw.size(), cudaMemcpyHostToDevice));
  return m;
}

inline DevMem upload_ints(const std::vector<int32_t>& v) {
  DevMem m(v.size() * 4);
  FATHOM_CUDA_CHECK(cudaMemcpy(m.get(), v.data(), v.size() * 4, cudaMemcpyHostToDevice));
  return m;
}

inline std::vector<float> download(const void* p, std::size_t n, DType d) {
  FATHOM_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<uint8_t> raw(n * dtype_size(d));
  FATHOM_CUDA_CHECK(cudaMemcpy(raw.data(), p, raw.size(), cudaMemcpyDeviceToHost));
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (d == DType::kF32) std::memcpy(&v[i], raw.data() + 4 * i, 4);
    else {
      uint16_t h;
      std::memcpy(&h, raw.data() + 2 * i, 2);
      v[i] = d == DType::kF16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
  }
  return v;
}

// ||a - b|| / ||b||; infinity if any value is NaN/inf or sizes differ.
inline double rel_l2(const std::vector<float>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return INFINITY;
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / (den > 0 ? den : 1));
}

}  // namespace fathom::cuda::test
