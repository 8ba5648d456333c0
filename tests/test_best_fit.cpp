// train/best_fit: the variable-projected error against its definition (a direct O(T^2)
// least-squares fit), its gradient against finite differences, and the optimum where it is
// known (a matched kernel is represented exactly).
#include <gtest/gtest.h>

#include <cmath>

#include "train/best_fit.h"

namespace attnlab {
namespace {

LagTarget kernel_target(bool poly, double beta, int T, int from) {
  LagTarget t;
  for (int s = 0; s < T; ++s) t.r.push_back(poly ? std::pow(1.0 + s, -beta) : std::exp(-beta * s));
  t.normalized = true;
  for (int p = from; p < T; ++p) t.positions.push_back(p);
  return t;
}

LagTarget lag_target(int lag, int T, int from) {
  LagTarget t;
  t.r.assign(size_t(T), 0.0);
  t.r[size_t(lag)] = 1;
  for (int p = std::max(lag, from); p < T; ++p) t.positions.push_back(p);
  return t;
}

// The definition: stack R_t and the basis (u_1..u_H, e_0) over (t in P, s <= t) and solve the
// least-squares problem by normal equations, in the plain O(H T^2) way.
double direct_error(const LagTarget& tgt, bool phi_log, const std::vector<double>& p) {
  const size_t H = p.size(), n = H + 1;
  std::vector<std::vector<double>> cols(n);
  std::vector<double> R;
  for (int t : tgt.positions) {
    double mass = 0, zmax = -INFINITY;
    for (int s = 0; s <= t; ++s) mass += tgt.r[size_t(s)];
    std::vector<std::vector<double>> u(H, std::vector<double>(size_t(t) + 1));
    for (size_t h = 0; h < H; ++h) {
      zmax = -INFINITY;
      for (int s = 0; s <= t; ++s) zmax = std::max(zmax, -p[h] * (phi_log ? std::log1p(double(s)) : double(s)));
      double z = 0;
      for (int s = 0; s <= t; ++s) z += u[h][size_t(s)] = std::exp(-p[h] * (phi_log ? std::log1p(double(s)) : double(s)) - zmax);
      for (double& v : u[h]) v /= z;
    }
    for (int s = 0; s <= t; ++s) {
      R.push_back(tgt.r[size_t(s)] / (tgt.normalized ? mass : 1.0));
      for (size_t h = 0; h < H; ++h) cols[h].push_back(u[h][size_t(s)]);
      cols[H].push_back(s == 0 ? 1.0 : 0.0);
    }
  }
  std::vector<double> G(n * n), b(n);
  for (size_t j = 0; j < n; ++j) {
    for (size_t i = 0; i < R.size(); ++i) b[j] += cols[j][i] * R[i];
    for (size_t k = 0; k < n; ++k)
      for (size_t i = 0; i < R.size(); ++i) G[j * n + k] += cols[j][i] * cols[k][i];
  }
  // Gaussian elimination with partial pivoting.
  std::vector<double> c = b;
  std::vector<double> A = G;
  for (size_t j = 0; j < n; ++j) {
    size_t piv = j;
    for (size_t i = j + 1; i < n; ++i)
      if (std::fabs(A[i * n + j]) > std::fabs(A[piv * n + j])) piv = i;
    for (size_t k = 0; k < n; ++k) std::swap(A[j * n + k], A[piv * n + k]);
    std::swap(c[j], c[piv]);
    for (size_t i = j + 1; i < n; ++i) {
      const double f = A[i * n + j] / A[j * n + j];
      for (size_t k = j; k < n; ++k) A[i * n + k] -= f * A[j * n + k];
      c[i] -= f * c[j];
    }
  }
  for (size_t j = n; j-- > 0;) {
    for (size_t k = j + 1; k < n; ++k) c[j] -= A[j * n + k] * c[k];
    c[j] /= A[j * n + j];
  }
  double err = 0, norm = 0;
  for (size_t i = 0; i < R.size(); ++i) {
    double k = 0;
    for (size_t j = 0; j < n; ++j) k += c[j] * cols[j][i];
    err += (R[i] - k) * (R[i] - k);
    norm += R[i] * R[i];
  }
  return err / norm;
}

TEST(BestFit, ProjectedErrorMatchesTheDirectLeastSquaresFit) {
  const std::vector<double> p = {0.3, -0.05, 1.7};
  for (bool phi_log : {false, true}) {
    for (const LagTarget& tgt : {kernel_target(true, 1.0, 40, 0), kernel_target(false, 0.2, 40, 20), lag_target(7, 40, 20)}) {
      double fast = NAN;
      const double objective = projected_error(tgt, phi_log, p, nullptr, &fast);
      const double direct = direct_error(tgt, phi_log, p);
      EXPECT_NEAR(fast, direct, 1e-6 * direct) << "phi_log " << phi_log;  // the ridge's bias is second order
      EXPECT_GE(fast, direct * (1 - 1e-12));  // a fit the model can make: never below the least
      EXPECT_GE(objective, fast);
    }
  }
}

TEST(BestFit, GradientMatchesFiniteDifferences) {
  for (bool phi_log : {false, true}) {
    for (const LagTarget& tgt : {kernel_target(true, 2.0, 64, 32), lag_target(9, 64, 32)}) {
      const std::vector<double> p = {0.4, -0.08, 0.02, 2.5};
      std::vector<double> g;
      projected_error(tgt, phi_log, p, &g);
      for (size_t h = 0; h < p.size(); ++h) {
        const double eps = 1e-6;
        std::vector<double> up = p, dn = p;
        up[h] += eps;
        dn[h] -= eps;
        const double fd = (projected_error(tgt, phi_log, up) - projected_error(tgt, phi_log, dn)) / (2 * eps);
        EXPECT_NEAR(g[h], fd, 1e-5 * std::max(1.0, std::fabs(fd))) << "phi_log " << phi_log << " head " << h;
      }
    }
  }
}

TEST(BestFit, NoOverflowForSteepNegativeSlopesOnLongSequences) {
  const LagTarget tgt = kernel_target(false, 0.1, 2048, 1024);
  const double e = projected_error(tgt, false, {-3.0, 5.0, 0.1});
  EXPECT_TRUE(std::isfinite(e));
  EXPECT_GE(e, 0.0);
  EXPECT_LE(e, 1.0);
}

TEST(BestFit, AMatchedKernelIsRepresentedExactly) {
  // (1 + s)^-1 normalized over the visible past is one log-type head with p = 1; e^{-0.1 s}
  // is one lin-type head with p = 0.1.
  EXPECT_LT(best_fit(kernel_target(true, 1.0, 128, 64), true, 1).rel, 1e-8);
  EXPECT_LT(best_fit(kernel_target(false, 0.1, 128, 64), false, 1).rel, 1e-8);
  // mismatched: a positive floor
  EXPECT_GT(best_fit(kernel_target(true, 1.0, 128, 64), false, 1).rel, 1e-3);
}

TEST(BestFit, MoreHeadsNeverFitWorseAndTheSearchBeatsItsStart) {
  const LagTarget tgt = lag_target(8, 32, 16);
  double prev = 1.0;
  for (int H : {1, 2, 4}) {
    const BestFit f = best_fit(tgt, false, H);
    ASSERT_EQ(f.p.size(), size_t(H));
    // the reported error is a real fit's (never below the least at its p), and within 1e-4 of it
    const double least = direct_error(tgt, false, f.p);
    EXPECT_GE(f.rel, least * (1 - 1e-12));
    EXPECT_LE(f.rel, least + 1e-4);
    EXPECT_LE(f.rel, prev + 1e-9) << "H = " << H;
    prev = f.rel;
  }
  std::vector<double> alibi = {std::pow(2.0, -2.0), std::pow(2.0, -4.0), std::pow(2.0, -6.0), std::pow(2.0, -8.0)};
  EXPECT_LT(prev, projected_error(tgt, false, alibi) - 0.01);
}

}  // namespace
}  // namespace attnlab
