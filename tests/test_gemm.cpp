// The threaded GEMM (kernels/gemm.h) splits C into one block per thread above a size
// threshold; every split (rows or columns, any transposition, beta 0 or not, odd sizes) must
// give the product of a single OpenBLAS call.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "core/rng.h"
#include "kernels/gemm.h"

using namespace attnlab;

namespace {
template <class T>
void check_split(bool ta, bool tb, int M, int N, int K, T beta) {
  const int lda = ta ? M : K, ldb = tb ? K : N, ldc = N + 3;  // ldc > N: a strided C
  std::vector<T> A(size_t(ta ? K : M) * lda), B(size_t(tb ? N : K) * ldb), C0(size_t(M) * ldc);
  for (size_t i = 0; i < A.size(); ++i) A[i] = T(rng_normal(1, 1, i));
  for (size_t i = 0; i < B.size(); ++i) B[i] = T(rng_normal(1, 2, i));
  for (size_t i = 0; i < C0.size(); ++i) C0[i] = T(rng_normal(1, 3, i));
  std::vector<T> ref = C0, got = C0;
  detail::blas_gemm(ta, tb, M, N, K, T(0.7), A.data(), lda, B.data(), ldb, beta, ref.data(), ldc);
  omp_set_num_threads(2);
  ASSERT_FALSE(omp_in_parallel());
  gemm(ta, tb, M, N, K, T(0.7), A.data(), lda, B.data(), ldb, beta, got.data(), ldc);
  double worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::abs(double(got[i]) - double(ref[i])));
  const double tol = sizeof(T) == 4 ? 1e-4 : 1e-12;
  EXPECT_LE(worst, tol * std::sqrt(double(K))) << "ta=" << ta << " tb=" << tb << " M=" << M << " N=" << N << " K=" << K;
}
}  // namespace

TEST(Gemm, ThreadedSplitEqualsOneCall) {
  static_assert(detail::kSplitMinMacs <= 300.0 * 200 * 64, "the sizes below must be split");
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      check_split<double>(ta, tb, 301, 200, 64, 0.0);   // split by rows (M >= N), uneven
      check_split<double>(ta, tb, 200, 333, 64, 1.5);   // split by columns, beta != 0
      check_split<float>(ta, tb, 517, 96, 130, 1.0);
      check_split<float>(ta, tb, 40, 37, 20, 0.0);      // below the threshold: one call
    }
}
