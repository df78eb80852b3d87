#include "models/whisper/logits_rules.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "models/whisper/config.h"

namespace fathom::models::whisper {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

void suppress(std::span<float> logits, int begin, int end) {
  begin = std::max(begin, 0);
  end = std::min(end, static_cast<int>(logits.size()));
  for (int i = begin; i < end; ++i) logits[i] = kNegInf;
}

void suppress_list(std::span<float> logits, const std::vector<int>& ids) {
  for (int id : ids)
    if (id >= 0 && id < static_cast<int>(logits.size())) logits[id] = kNegInf;
}

// The row kernels are written once over a GCC vector type V (float lanes) and I (int32 lanes of the same
// width): four lanes for the portable x86-64 baseline (SSE2), eight in a copy compiled for AVX2 + FMA and
// chosen at run time where the CPU has them. (The kernels are inlined into their callers, so the ABI note
// about passing wide vectors does not apply.)
#pragma GCC diagnostic ignored "-Wpsabi"
template <typename V>
inline __attribute__((always_inline)) V load_v(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <typename V>
inline __attribute__((always_inline)) V splat_v(float x) {
  return V{} + x;
}

// exp(x) for x <= 0 (Cephes expf polynomial, ~2 ulp); x below -87 (and -inf) gives ~1e-38 instead of 0,
// negligible next to the row maximum's exp(0) = 1 in a sum.
template <typename V, typename I>
inline __attribute__((always_inline)) V exp_nonpositive(V x) {
  const V lo = splat_v<V>(-87.0f);
  x = x < lo ? lo : x;
  const V fx = x * 1.44269504088896341f;
  const I n = __builtin_convertvector(fx - 0.5f, I);  // round to nearest for fx <= 0
  const V nf = __builtin_convertvector(n, V);
  V r = x - nf * 0.693359375f;
  r = r - nf * -2.12194440e-4f;
  V y = splat_v<V>(1.9875691500e-4f);
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * (r * r) + r + 1.0f;
  const I bits = (n + 127) << 23;
  V scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return y * scale;
}

template <typename V>
inline __attribute__((always_inline)) float max_impl(const float* v, std::size_t n) {
  constexpr std::size_t L = sizeof(V) / sizeof(float);
  const std::size_t vec = n / (2 * L) * (2 * L);
  float mx = -std::numeric_limits<float>::infinity();
  if (vec > 0) {
    V m0 = splat_v<V>(mx), m1 = m0;
    for (std::size_t i = 0; i < vec; i += 2 * L) {
      const V a = load_v<V>(v + i), b = load_v<V>(v + i + L);
      m0 = a > m0 ? a : m0;
      m1 = b > m1 ? b : m1;
    }
    m0 = m1 > m0 ? m1 : m0;
    for (std::size_t j = 0; j < L; ++j) mx = std::max(mx, m0[j]);
  }
  for (std::size_t i = vec; i < n; ++i) mx = std::max(mx, v[i]);
  return mx;
}

// Index of the first entry equal to x (n when none).
template <typename V>
inline __attribute__((always_inline)) std::size_t find_impl(const float* v, std::size_t n, float x) {
  constexpr std::size_t L = sizeof(V) / sizeof(float);
  const std::size_t vec = n / L * L;
  const V xs = splat_v<V>(x);
  std::size_t i = 0;
  for (; i < vec; i += L) {
    const auto eq = load_v<V>(v + i) == xs;
    bool any = false;
    for (std::size_t j = 0; j < L; ++j) any |= eq[j] != 0;
    if (any) break;
  }
  for (; i < n; ++i)
    if (v[i] == x) return i;
  return n;
}

// sum(exp(v - mx)) with mx >= every entry and finite. Float lane sums over blocks of 1024, added in double.
template <typename V, typename I>
inline __attribute__((always_inline)) double sum_exp_impl(const float* v, std::size_t n, float mx) {
  constexpr std::size_t L = sizeof(V) / sizeof(float);
  constexpr std::size_t kBlock = 1024;
  const std::size_t vec = n / (2 * L) * (2 * L);
  double total = 0;
  const V m = splat_v<V>(mx);
  for (std::size_t b = 0; b < vec; b += kBlock) {
    const std::size_t e = std::min(vec, b + kBlock);
    V a0 = splat_v<V>(0.0f), a1 = a0;
    for (std::size_t i = b; i < e; i += 2 * L) {
      a0 += exp_nonpositive<V, I>(load_v<V>(v + i) - m);
      a1 += exp_nonpositive<V, I>(load_v<V>(v + i + L) - m);
    }
    a0 += a1;
    for (std::size_t j = 0; j < L; ++j) total += static_cast<double>(a0[j]);
  }
  for (std::size_t i = vec; i < n; ++i) total += std::exp(static_cast<double>(v[i]) - mx);
  return total;
}

using F4 = float __attribute__((vector_size(16)));
using I4 = int32_t __attribute__((vector_size(16)));

float max_base(const float* v, std::size_t n) { return max_impl<F4>(v, n); }
double sum_exp_base(const float* v, std::size_t n, float mx) { return sum_exp_impl<F4, I4>(v, n, mx); }
std::size_t find_base(const float* v, std::size_t n, float x) { return find_impl<F4>(v, n, x); }

#if defined(__x86_64__) && defined(__GNUC__)
using F8 = float __attribute__((vector_size(32)));
using I8 = int32_t __attribute__((vector_size(32)));
__attribute__((target("avx2,fma"))) float max_avx2(const float* v, std::size_t n) { return max_impl<F8>(v, n); }
__attribute__((target("avx2,fma"))) double sum_exp_avx2(const float* v, std::size_t n, float mx) {
  return sum_exp_impl<F8, I8>(v, n, mx);
}
__attribute__((target("avx2,fma"))) std::size_t find_avx2(const float* v, std::size_t n, float x) {
  return find_impl<F8>(v, n, x);
}
const bool kHasAvx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
const bool kHasAvx2 = false;
float max_avx2(const float* v, std::size_t n) { return max_base(v, n); }
double sum_exp_avx2(const float* v, std::size_t n, float mx) { return sum_exp_base(v, n, mx); }
std::size_t find_avx2(const float* v, std::size_t n, float x) { return find_base(v, n, x); }
#endif

float max_of(std::span<const float> v) {
  return kHasAvx2 ? max_avx2(v.data(), v.size()) : max_base(v.data(), v.size());
}

double sum_exp(std::span<const float> v, float mx) {
  return kHasAvx2 ? sum_exp_avx2(v.data(), v.size(), mx) : sum_exp_base(v.data(), v.size(), mx);
}

}  // namespace

RowStats row_stats(std::span<const float> logits) {
  RowStats s;
  s.max = max_of(logits);
  if (!std::isfinite(s.max)) {
    s.logsumexp = -std::numeric_limits<double>::infinity();
    return s;
  }
  s.argmax = static_cast<int>(kHasAvx2 ? find_avx2(logits.data(), logits.size(), s.max)
                                      : find_base(logits.data(), logits.size(), s.max));
  s.logsumexp = static_cast<double>(s.max) + std::log(sum_exp(logits, s.max));
  return s;
}

double log_sum_exp(std::span<const float> logits) {
  const float mx = max_of(logits);
  if (!std::isfinite(mx)) return -std::numeric_limits<double>::infinity();
  return static_cast<double>(mx) + std::log(sum_exp(logits, mx));
}

LogitsRules make_logits_rules(const GenerationConfig& gen, int vocab_size, bool timestamps) {
  LogitsRules r;
  r.vocab_size = vocab_size;
  r.eos_token_id = gen.eos_token_id;
  r.no_timestamps_token_id = gen.no_timestamps_token_id;
  r.timestamp_begin = gen.timestamp_begin();
  r.suppress_tokens = gen.suppress_tokens;
  r.begin_suppress_tokens = gen.begin_suppress_tokens;
  r.timestamps = timestamps;
  r.max_initial_timestamp_index = gen.max_initial_timestamp_index;
  return r;
}

std::vector<double> log_softmax(std::span<const float> logits) {
  double mx = -std::numeric_limits<double>::infinity();
  for (float v : logits) mx = std::max(mx, static_cast<double>(v));
  std::vector<double> out(logits.size());
  if (!std::isfinite(mx)) {
    std::fill(out.begin(), out.end(), -std::numeric_limits<double>::infinity());
    return out;
  }
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - mx);
  double lse = mx + std::log(sum);
  for (std::size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<double>(logits[i]) - lse;
  return out;
}

void apply_logits_rules(const LogitsRules& rules, std::span<const int32_t> generated, std::span<float> logits) {
  const int n = static_cast<int>(logits.size());
  // SuppressTokensAtBeginLogitsProcessor: only at the first generated position.
  if (generated.empty()) suppress_list(logits, rules.begin_suppress_tokens);
  // SuppressTokensLogitsProcessor.
  suppress_list(logits, rules.suppress_tokens);
  if (!rules.timestamps) return;

  // WhisperTimeStampLogitsProcessor.
  const int tb = rules.timestamp_begin;
  if (rules.no_timestamps_token_id >= 0 && rules.no_timestamps_token_id < n) logits[rules.no_timestamps_token_id] = kNegInf;
  const std::size_t len = generated.size();
  const bool last_was_timestamp = len >= 1 && generated[len - 1] >= tb;
  const bool penultimate_was_timestamp = len < 2 || generated[len - 2] >= tb;
  if (last_was_timestamp) {
    if (penultimate_was_timestamp)
      suppress(logits, tb, n);  // a pair is complete: text (or eos) must follow
    else
      suppress(logits, 0, rules.eos_token_id);  // an open pair: no normal text
  }
  int last_timestamp = -1;
  for (auto t : generated)
    if (t >= tb) last_timestamp = t;
  if (last_timestamp >= 0) {
    // Timestamps never decrease; a closing timestamp may repeat the opening one, otherwise strictly later.
    int limit = (last_was_timestamp && !penultimate_was_timestamp) ? last_timestamp : last_timestamp + 1;
    suppress(logits, tb, limit);
  }
  if (generated.empty()) {
    suppress(logits, 0, tb);  // the first generated token is a timestamp
    if (rules.max_initial_timestamp_index) suppress(logits, tb + *rules.max_initial_timestamp_index + 1, n);
  }
  // Force a timestamp when their total probability beats every single text token. Both sides are
  // log-probabilities over the same row, so the row's normaliser cancels: compare log-sum-exp of the
  // timestamp logits with the largest text logit.
  if (tb < n) {
    // Exact double exps: only the ~1500 timestamp entries.
    double ts_logprob = -std::numeric_limits<double>::infinity();
    const float ts_max = max_of(logits.subspan(static_cast<std::size_t>(tb)));
    if (std::isfinite(ts_max)) {
      double sum = 0;
      for (int i = tb; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - ts_max);
      ts_logprob = static_cast<double>(ts_max) + std::log(sum);
    }
    if (std::isfinite(ts_logprob)) {
      const double text_max = max_of(logits.first(static_cast<std::size_t>(std::max(0, std::min(tb, n)))));
      if (ts_logprob > text_max) suppress(logits, 0, tb);
    }
  }
}

}  // namespace fathom::models::whisper
