// Times the GEMM libraries Debian ships (OpenBLAS, BLIS, oneDNN, libxsmm) at attnlab's own
// shapes, single-threaded: kernels/gemm.h splits every large product into one block per
// thread and makes one single-threaded call per block, so the per-thread call is what counts.
// Built and run by tools/gemm_libs.sh; prints one line per shape with each library's GFLOP/s.
#include <blis.h>
#include <cblas.h>
#include <dnnl.h>
#include <libxsmm.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

extern "C" void openblas_set_num_threads(int);

struct Shape {
  const char* where;
  bool ta, tb;
  int M, N, K;
};

// Row-major C[M,N] = op(A) op(B) with the leading dimensions attnlab uses (dense operands).
static double time_gflops(const std::function<void()>& f, const Shape& s) {
  f();
  double best = 0;
  for (int r = 0; r < 3; ++r) {
    int reps = 0;
    const auto t0 = std::chrono::steady_clock::now();
    double el = 0;
    do {
      f();
      ++reps;
      el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } while (el < 0.15);
    best = std::max(best, 2.0 * s.M * s.N * double(s.K) * reps / el / 1e9);
  }
  return best;
}

int main() {
  openblas_set_num_threads(1);
  omp_set_num_threads(1);
  bli_thread_set_num_threads(1);
  libxsmm_init();
  const std::vector<Shape> shapes = {
      {"attention tile: scores q k^T (head dim 32)", false, false, 64, 64, 32},
      {"attention tile: scores q k^T, k untransposed (NT)", false, true, 64, 64, 32},
      {"attention tile: P V (head dim 32)", false, false, 64, 32, 64},
      {"attention tile: dV += P^T dO", true, false, 64, 32, 64},
      {"attention tile: scores (head dim 16, hetero/tiny)", false, false, 64, 64, 16},
      {"attention tile: scores (head dim 8, hetero)", false, false, 64, 64, 8},
      {"tiny fused qkv, per thread (2048 x 64 -> 192)", false, true, 2048, 192, 64},
      {"tiny FFN1, per thread (2048 x 64 -> 256)", false, true, 2048, 256, 64},
      {"tiny dW FFN1, per thread (128 x 64, K 4096)", true, false, 128, 64, 4096},
      {"small fused qkv, per thread (4096 x 128 -> 384)", false, true, 4096, 384, 128},
      {"small FFN1, per thread (4096 x 128 -> 512)", false, true, 4096, 512, 128},
      {"small FFN2, per thread (4096 x 512 -> 128)", false, true, 4096, 128, 512},
      {"small dX FFN2 (dy W), per thread (4096 x 128 -> 512)", false, false, 4096, 512, 128},
      {"small dW FFN1, per thread (256 x 128, K 8192)", true, false, 256, 128, 8192},
      {"medium fused qkv, per thread (2048 x 256 -> 768)", false, true, 2048, 768, 256},
      {"medium FFN1, per thread (2048 x 256 -> 1024)", false, true, 2048, 1024, 256},
      {"medium FFN2, per thread (2048 x 1024 -> 256)", false, true, 2048, 256, 1024},
      {"medium dW FFN1, per thread (512 x 256, K 4096)", true, false, 512, 256, 4096},
      {"SGEMM n = 1024", false, false, 1024, 1024, 1024},
  };
  std::printf("%-55s %9s %9s %9s %9s  (GFLOP/s, one thread)\n", "shape (row-major C[M,N] = op(A) op(B))", "OpenBLAS",
              "BLIS", "oneDNN", "libxsmm");
  for (const Shape& s : shapes) {
    const int lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N, ldc = s.N;
    std::vector<float> A(size_t(s.M) * s.K), B(size_t(s.K) * s.N), C(size_t(s.M) * s.N);
    for (size_t i = 0; i < A.size(); ++i) A[i] = float((i * 37) % 101) / 101.f - 0.5f;
    for (size_t i = 0; i < B.size(); ++i) B[i] = float((i * 53) % 97) / 97.f - 0.5f;
    const float one = 1, zero = 0;
    const double ob = time_gflops([&] {
      cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans, s.M, s.N, s.K, 1.f,
                  A.data(), lda, B.data(), ldb, 0.f, C.data(), ldc);
    }, s);
    // BLIS's typed API takes row and column strides: row-major is (ld, 1).
    const double bl = time_gflops([&] {
      bli_sgemm(s.ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, s.tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, s.M, s.N, s.K,
                const_cast<float*>(&one), A.data(), lda, 1, B.data(), ldb, 1, const_cast<float*>(&zero), C.data(), ldc, 1);
    }, s);
    const double dn = time_gflops([&] {
      dnnl_sgemm(s.ta ? 'T' : 'N', s.tb ? 'T' : 'N', s.M, s.N, s.K, 1.f, A.data(), lda, B.data(), ldb, 0.f, C.data(), ldc);
    }, s);
    // libxsmm's JIT kernels are column-major: C^T = op(B)^T op(A)^T, so swap the operands.
    double xs = 0;
    const libxsmm_blasint m = s.N, n = s.M, k = s.K, xa = ldb, xb = lda, xc = ldc;
    const int flags = (s.tb ? LIBXSMM_GEMM_FLAG_TRANS_A : 0) | (s.ta ? LIBXSMM_GEMM_FLAG_TRANS_B : 0);
    if (libxsmm_smmfunction f = libxsmm_smmdispatch(m, n, k, &xa, &xb, &xc, &one, &zero, &flags, nullptr))
      xs = time_gflops([&] { f(B.data(), A.data(), C.data()); }, s);
    std::printf("%-55s %9.1f %9.1f %9.1f %9s\n", s.where, ob, bl, dn, xs > 0 ? std::to_string(int(xs + 0.5)).c_str() : "n/a");
    std::fflush(stdout);
  }
  libxsmm_finalize();
  return 0;
}
