#include "core/blas_check.h"

#include <cblas.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace attnlab {

namespace {

// Deterministic values in [-1, 1).
std::vector<double> values(size_t n, uint64_t seed) {
  std::vector<double> v(n);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (double& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = double(s >> 11) / 4503599627370496.0 - 1.0;
  }
  return v;
}

// C = alpha A B + beta C0 for row-major A [M, K], B [K, N], given to BLAS in each of the four
// layouts (transposed or not); compared with one double-precision loop, within the bound
// 2 (K + 2) eps (sum_k |alpha a_ik b_kj| + |beta c0_ij|) per entry.
template <class T>
bool check_shape(int M, int N, int K, bool fault, std::string* why) {
  const auto a = values(size_t(M) * K, 11 + M), b = values(size_t(K) * N, 23 + N), c0 = values(size_t(M) * N, 37 + K);
  const double alpha = 0.75, beta = 0.5;
  std::vector<double> ref(size_t(M) * N), mag(size_t(M) * N);
  for (int i = 0; i < M; ++i) {  // the inputs as BLAS sees them (rounded to T)
    double* r = ref.data() + size_t(i) * N;
    double* g = mag.data() + size_t(i) * N;
    for (int j = 0; j < N; ++j) {
      r[j] = beta * double(T(c0[size_t(i) * N + j]));
      g[j] = std::abs(r[j]);
    }
    for (int k = 0; k < K; ++k) {
      const double aik = alpha * double(T(a[size_t(i) * K + k]));
      for (int j = 0; j < N; ++j) {
        const double p = aik * double(T(b[size_t(k) * N + j]));
        r[j] += p;
        g[j] += std::abs(p);
      }
    }
  }
  if (fault) ref[size_t(M / 2) * N + size_t(N / 2)] += 1.0;
  const double eps = sizeof(T) == 4 ? 5.96e-8 : 1.11e-16;
  std::vector<T> A(a.size()), B(b.size()), C(c0.size());
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    for (int i = 0; i < M; ++i)
      for (int k = 0; k < K; ++k) A[ta ? size_t(k) * M + i : size_t(i) * K + k] = T(a[size_t(i) * K + k]);
    for (int k = 0; k < K; ++k)
      for (int j = 0; j < N; ++j) B[tb ? size_t(j) * K + k : size_t(k) * N + j] = T(b[size_t(k) * N + j]);
    for (size_t i = 0; i < C.size(); ++i) C[i] = T(c0[i]);
    const auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    const int lda = ta ? M : K, ldb = tb ? K : N;
    if constexpr (sizeof(T) == 4)
      cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, float(alpha), A.data(), lda, B.data(), ldb, float(beta), C.data(), N);
    else
      cblas_dgemm(CblasRowMajor, TA, TB, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), N);
    for (size_t e = 0; e < C.size(); ++e) {
      const double err = std::abs(double(C[e]) - ref[e]);
      if (!(err <= 2.0 * (K + 2) * eps * mag[e] + 1e-30)) {
        *why = std::string(sizeof(T) == 4 ? "SGEMM" : "DGEMM") + " " + (ta ? "T" : "N") + (tb ? "T" : "N") + " " +
               std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) + ": entry (" + std::to_string(e / size_t(N)) +
               ", " + std::to_string(e % size_t(N)) + ") is " + std::to_string(double(C[e])) + ", the loop gives " + std::to_string(ref[e]);
        return false;
      }
    }
  }
  return true;
}

}  // namespace

bool blas_kernels_ok(std::string* why) {
  const char* f = std::getenv("ATTNLAB_BLAS_CHECK_FAULT");
  const bool fault = f && std::string(f) == "1";
  if (f && std::string(f) == "crash") {  // as a kernel with an illegal instruction or a bad read would
    std::signal(SIGSEGV, SIG_DFL);  // (past any handler a sanitizer installed)
    std::raise(SIGSEGV);
  }
  // Small products (OpenBLAS's small-matrix kernels), a medium one, and a large one that
  // is blocked and split across threads.
  const int shapes[][3] = {{3, 5, 7}, {16, 16, 16}, {31, 17, 9}, {96, 80, 130}, {320, 72, 520}};
  for (const auto& s : shapes)
    if (!check_shape<float>(s[0], s[1], s[2], fault, why) || !check_shape<double>(s[0], s[1], s[2], fault, why)) return false;
  return true;
}

bool blas_kernels_ok_isolated(std::string* why) {
  int fds[2];
  if (pipe(fds) != 0) return blas_kernels_ok(why);
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return blas_kernels_ok(why);
  }
  if (pid == 0) {
    close(fds[0]);
    if (const int null = open("/dev/null", O_WRONLY); null >= 0) dup2(null, 2);  // a crash's noise is not ours to print
    std::string w;
    const bool ok = blas_kernels_ok(&w);
    (void)!write(fds[1], w.data(), w.size());
    _exit(ok ? 0 : 1);
  }
  close(fds[1]);
  std::string w;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) w.append(buf, size_t(n));
  close(fds[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return true;
  *why = WIFSIGNALED(st) ? "the check crashed with signal " + std::to_string(WTERMSIG(st)) : w;
  return false;
}

std::string blas_core_name() {
  const char* n = openblas_get_corename();
  return n ? n : "unknown";
}

}  // namespace attnlab
