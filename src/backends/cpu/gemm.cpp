#include "backends/cpu/gemm.h"

#include <algorithm>
#include <vector>

#include "backends/cpu/parallel.h"

#if FATHOM_WITH_OPENBLAS
#include <cblas.h>
#endif

namespace fathom::cpu {

bool sgemm_uses_blas() { return FATHOM_WITH_OPENBLAS != 0; }

void sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
           const float* b, int ldb, float beta, float* c, int ldc) {
  if (m <= 0 || n <= 0) return;
#if FATHOM_WITH_OPENBLAS
  if (k > 0) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k,
                alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
#endif
  sgemm_portable(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

namespace {

constexpr int kBlockK = 128;
constexpr int kBlockN = 256;

// Rows [row0, row1) of C, all columns.
void gemm_rows(bool trans_a, bool trans_b, int row0, int row1, int n, int k, float alpha, const float* a, int lda,
               const float* b, int ldb, float beta, float* c, int ldc, std::vector<float>& packed) {
  for (int i = row0; i < row1; ++i) {
    float* ci = c + static_cast<long>(i) * ldc;
    if (beta == 0.0f) {
      std::fill(ci, ci + n, 0.0f);
    } else if (beta != 1.0f) {
      for (int j = 0; j < n; ++j) ci[j] *= beta;
    }
  }
  packed.resize(static_cast<size_t>(kBlockK) * kBlockN);
  for (int n0 = 0; n0 < n; n0 += kBlockN) {
    const int nb = std::min(kBlockN, n - n0);
    for (int k0 = 0; k0 < k; k0 += kBlockK) {
      const int kb = std::min(kBlockK, k - k0);
      // Pack op(B)[k0:k0+kb, n0:n0+nb] row-major into `packed` (row stride nb).
      for (int kk = 0; kk < kb; ++kk) {
        float* dst = packed.data() + static_cast<size_t>(kk) * nb;
        if (!trans_b) {
          const float* src = b + static_cast<long>(k0 + kk) * ldb + n0;
          std::copy(src, src + nb, dst);
        } else {
          for (int j = 0; j < nb; ++j) dst[j] = b[static_cast<long>(n0 + j) * ldb + k0 + kk];
        }
      }
      for (int i = row0; i < row1; ++i) {
        float* __restrict ci = c + static_cast<long>(i) * ldc + n0;
        for (int kk = 0; kk < kb; ++kk) {
          const float av = alpha * (trans_a ? a[static_cast<long>(k0 + kk) * lda + i] : a[static_cast<long>(i) * lda + k0 + kk]);
          if (av == 0.0f) continue;
          const float* __restrict bp = packed.data() + static_cast<size_t>(kk) * nb;
          for (int j = 0; j < nb; ++j) ci[j] += av * bp[j];
        }
      }
    }
  }
}

}  // namespace

void sgemm_serial(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
                  const float* b, int ldb, float beta, float* c, int ldc) {
  if (m <= 0 || n <= 0) return;
  thread_local std::vector<float> packed;
  gemm_rows(trans_a, trans_b, 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, packed);
}

void sgemm_portable(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
                    const float* b, int ldb, float beta, float* c, int ldc) {
  if (m <= 0 || n <= 0) return;
  const long work = static_cast<long>(m) * n * std::max(k, 1);
  if (work < (1L << 18)) {
    std::vector<float> packed;
    gemm_rows(trans_a, trans_b, 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, packed);
    return;
  }
  parallel_for(m, 4, [&](int64_t r0, int64_t r1, int) {
    std::vector<float> packed;
    gemm_rows(trans_a, trans_b, static_cast<int>(r0), static_cast<int>(r1), n, k, alpha, a, lda, b, ldb, beta, c,
              ldc, packed);
  });
}

}  // namespace fathom::cpu
