#pragma once
// Single-precision GEMM on the CPU, row-major:
//   C[M,N] = alpha * op(A) * op(B) + beta * C,  op(X) = X or X^T.
// A is [M,K] (lda >= K) or, transposed, [K,M] (lda >= M); likewise B [K,N] or [N,K]. C: ldc >= N.
// sgemm() uses OpenBLAS (multi-threaded) when built with FATHOM_WITH_OPENBLAS, else sgemm_portable().
// Both are safe to call from several threads at once.
namespace fathom::cpu {

void sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
           const float* b, int ldb, float beta, float* c, int ldc);
// The portable blocked implementation (threads over rows of C through the pool when called from outside
// it). Always compiled, so it is tested in every build.
void sgemm_portable(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
                    const float* b, int ldb, float beta, float* c, int ldc);
// The portable kernel on the calling thread only (for callers already running one task per thread,
// e.g. attention per (sequence, head): a threaded BLAS called from several threads at once serialises).
void sgemm_serial(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
                  const float* b, int ldb, float beta, float* c, int ldc);
// True when sgemm() goes through a BLAS library.
bool sgemm_uses_blas();

}  // namespace fathom::cpu
