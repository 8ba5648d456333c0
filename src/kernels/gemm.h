#pragma once
// GEMM through OpenBLAS (row-major): C[M,N] = alpha * op(A) op(B) + beta * C.
//
// Threading: outside a parallel region, a large product is split into one block of C per
// OpenMP thread (rows of C, or columns when N > M), each computed by a single-threaded
// OpenBLAS call (OpenBLAS runs single-threaded inside a parallel region). OpenBLAS's own
// threading scaled only 1.3-1.8x from 1 to 2 threads on the Transformer's shapes (e.g.
// 4096x256x256: 1.34x; measured here), the split 1.85-2.08x: each thread packs its own
// panels with no synchronisation between them.
#include <cblas.h>
#include <omp.h>

#include <cstddef>

namespace attnlab {

namespace detail {
inline void blas_gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                      int ldb, float beta, float* C, int ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B,
              ldb, beta, C, ldc);
}
inline void blas_gemm(bool ta, bool tb, int M, int N, int K, double alpha, const double* A, int lda, const double* B,
                      int ldb, double beta, double* C, int ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B,
              ldb, beta, C, ldc);
}
constexpr double kSplitMinMacs = 1 << 20;  // below this, one call (OpenBLAS keeps it on one thread anyway)
constexpr int kSplitMinBlock = 32;         // rows or columns of C per thread
}  // namespace detail

template <class T>
inline void gemm(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda, const T* B, int ldb, T beta, T* C,
                 int ldc) {
  const int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
  const bool by_rows = M >= N;
  const int len = by_rows ? M : N;
  if (nt < 2 || double(M) * N * K < detail::kSplitMinMacs || len < nt * detail::kSplitMinBlock) {
    detail::blas_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    // Block edges on multiples of 16 (a 64-byte line of floats when splitting columns).
    const int lo = int((long(len) * t / nt) & ~15L), hi = t + 1 == nt ? len : int((long(len) * (t + 1) / nt) & ~15L);
    if (hi > lo) {
      if (by_rows)  // rows lo..hi of op(A) and C
        detail::blas_gemm(ta, tb, hi - lo, N, K, alpha, ta ? A + lo : A + size_t(lo) * lda, lda, B, ldb, beta,
                          C + size_t(lo) * ldc, ldc);
      else  // columns lo..hi of op(B) and C
        detail::blas_gemm(ta, tb, M, hi - lo, K, alpha, A, lda, tb ? B + size_t(lo) * ldb : B + lo, ldb, beta, C + lo, ldc);
    }
  }
}

// y[N or M] = alpha * op(A) x + beta * y, A row-major [M, N].
inline void gemv(bool ta, int M, int N, float alpha, const float* A, int lda, const float* x, float beta, float* y) {
  cblas_sgemv(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, M, N, alpha, A, lda, x, 1, beta, y, 1);
}
inline void gemv(bool ta, int M, int N, double alpha, const double* A, int lda, const double* x, double beta, double* y) {
  cblas_dgemv(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, M, N, alpha, A, lda, x, 1, beta, y, 1);
}

}  // namespace attnlab
