#include "kernels/svd.h"

#include <cmath>
#include <stdexcept>
#include <string>

extern "C" void dgesvd_(const char* jobu, const char* jobvt, const int* m, const int* n, double* a, const int* lda,
                        double* s, double* u, const int* ldu, double* vt, const int* ldvt, double* work,
                        const int* lwork, int* info);

namespace attnlab {

Svd svd(const std::vector<double>& a, int m, int n) {
  Svd r;
  r.m = m; r.n = n; r.k = std::min(m, n);
  if (r.k == 0) return r;
  // LAPACK is column-major: the row-major m x n matrix is the column-major n x m matrix a^T.
  // Decompose a^T = U' S V'^T; then a = V' S U'^T, so u = V' and vt = U'^T.
  std::vector<double> at(a);  // column-major n x m
  const int M = n, N = m, K = r.k;
  std::vector<double> s(static_cast<size_t>(K)), uu(static_cast<size_t>(M) * K), vvt(static_cast<size_t>(K) * N);
  int info = 0, lwork = -1;
  double q = 0;
  dgesvd_("S", "S", &M, &N, at.data(), &M, s.data(), uu.data(), &M, vvt.data(), &K, &q, &lwork, &info);
  lwork = int(q);
  std::vector<double> work(size_t(std::max(1, lwork)));
  dgesvd_("S", "S", &M, &N, at.data(), &M, s.data(), uu.data(), &M, vvt.data(), &K, work.data(), &lwork, &info);
  if (info != 0) throw std::runtime_error("svd: LAPACK dgesvd failed (info " + std::to_string(info) + ")");
  // uu: column-major M x K (= n x k), columns are U'; vvt: column-major K x N (= k x m), rows are V'^T.
  r.s = s;
  r.u.assign(size_t(m) * K, 0.0);   // u[i, c] = V'[i, c] = vvt[c, i] = vvt[c + i * K]
  r.vt.assign(size_t(K) * n, 0.0);  // vt[c, j] = U'[j, c] = uu[j + c * M]
  for (int i = 0; i < m; ++i)
    for (int c = 0; c < K; ++c) r.u[size_t(i) * K + c] = vvt[size_t(c) + size_t(i) * K];
  for (int c = 0; c < K; ++c)
    for (int j = 0; j < n; ++j) r.vt[size_t(c) * n + j] = uu[size_t(j) + size_t(c) * M];
  return r;
}

double effective_rank(const std::vector<double>& s) {
  double sum = 0;
  for (double v : s) sum += std::abs(v);
  if (!(sum > 0)) return 0.0;
  double h = 0;
  for (double v : s) {
    const double p = std::abs(v) / sum;
    if (p > 0) h -= p * std::log(p);
  }
  return std::exp(h);
}

}  // namespace attnlab
