#pragma once
// Singular value decomposition of small dense matrices (LAPACK's dgesvd from OpenBLAS: a
// well-kept routine, nothing here is hand-written numerics). Row-major in and out.
#include <vector>

namespace attnlab {

struct Svd {
  int m = 0, n = 0, k = 0;  // A is m x n, k = min(m, n)
  std::vector<double> u;    // [m, k]  left singular vectors (columns)
  std::vector<double> s;    // [k]     descending
  std::vector<double> vt;   // [k, n]  right singular vectors (rows)
};

// The thin SVD of the row-major m x n matrix a: a = u diag(s) vt. Throws std::runtime_error
// if LAPACK does not converge.
Svd svd(const std::vector<double>& a, int m, int n);

// exp(entropy of s / sum(s)): the effective rank (Roy and Vetterli 2007); 0 for s = 0.
double effective_rank(const std::vector<double>& s);

}  // namespace attnlab
