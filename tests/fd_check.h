#pragma once
// Finite-difference gradient checking in double precision, shared by the tests.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/rng.h"

namespace attnlab::test {

inline std::vector<double> randn(size_t n, uint64_t seed, double scale = 1.0) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * rng_normal(seed, 99, i);
  return v;
}

// Compares analytic gradient g of loss() w.r.t. x (all entries, or `max_checks` spread
// evenly) with central differences. Fails the test with the worst entry named.
inline void expect_grad_close(const std::string& what, std::vector<double>& x, const std::vector<double>& g,
                              const std::function<double()>& loss, double tol = 1e-5,
                              size_t max_checks = 64, double eps = 1e-5) {
  ASSERT_EQ(x.size(), g.size()) << what;
  const size_t n = x.size();
  const size_t stride = n > max_checks ? n / max_checks : 1;
  double worst = 0;
  size_t worst_i = 0;
  double worst_a = 0, worst_n = 0;
  for (size_t i = 0; i < n; i += stride) {
    const double x0 = x[i];
    x[i] = x0 + eps;
    const double lp = loss();
    x[i] = x0 - eps;
    const double lm = loss();
    x[i] = x0;
    const double num = (lp - lm) / (2 * eps);
    const double err = std::fabs(num - g[i]) / std::fmax(1e-3, std::fabs(num) + std::fabs(g[i]));
    if (err > worst) { worst = err; worst_i = i; worst_a = g[i]; worst_n = num; }
  }
  EXPECT_LT(worst, tol) << what << ": entry " << worst_i << " analytic " << worst_a << " numeric " << worst_n;
}

}  // namespace attnlab::test
