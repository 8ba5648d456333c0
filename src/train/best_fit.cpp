#include "train/best_fit.h"

#include <algorithm>
#include <cmath>

#include "core/rng.h"

namespace attnlab {

namespace {

// The ridge on (c, a), per position that counts: it bounds the coefficients, and so the
// rounding error of ||R||^2 - 2 c.b + c'Gc, which an unbounded fit on a near-singular basis
// of exponentials drives below zero (a spurious perfect fit).
constexpr double kRidge = 1e-8;

// Running sums over s <= t of e^{-q phi(s)} v(s) (v = 1 if empty), read at the positions:
// log of the sum, and the mean of phi under those weights. q >= 0: the terms are <= v(s) and
// the sum is kept as is; q < 0: the sum is kept scaled by e^{q phi(t)} (its largest term), so
// that neither overflows for any q.
struct Prefix {
  std::vector<double> log_sum, mean_phi;
};

Prefix prefix(double q, const std::vector<double>& v, const std::vector<double>& phi, const std::vector<int>& pos) {
  Prefix out;
  out.log_sum.resize(pos.size());
  out.mean_phi.resize(pos.size());
  double S = 0, F = 0;
  size_t i = 0;
  for (int t = 0; t <= pos.back(); ++t) {
    const double vt = v.empty() ? 1.0 : v[size_t(t)];
    if (q >= 0) {
      const double e = std::exp(-q * phi[size_t(t)]) * vt;
      S += e;
      F += e * phi[size_t(t)];
    } else {
      const double d = t == 0 ? 1.0 : std::exp(q * (phi[size_t(t)] - phi[size_t(t) - 1]));
      S = S * d + vt;
      F = F * d + vt * phi[size_t(t)];
    }
    if (t != pos[i]) continue;
    out.log_sum[i] = S > 0 ? std::log(S) - (q < 0 ? q * phi[size_t(t)] : 0.0) : -INFINITY;
    out.mean_phi[i] = S > 0 ? F / S : 0.0;
    ++i;
  }
  return out;
}

// Solves (G + lambda I) c = b by Cholesky (G symmetric positive semi-definite, n x n, row-major).
std::vector<double> solve_spd(std::vector<double> G, std::vector<double> b, size_t n, double lambda) {
  for (size_t j = 0; j < n; ++j) G[j * n + j] += lambda;
  for (size_t j = 0; j < n; ++j) {
    for (size_t k = 0; k < j; ++k) G[j * n + j] -= G[j * n + k] * G[j * n + k];
    const double d = std::sqrt(std::max(G[j * n + j], 1e-300));
    G[j * n + j] = d;
    for (size_t i = j + 1; i < n; ++i) {
      for (size_t k = 0; k < j; ++k) G[i * n + j] -= G[i * n + k] * G[j * n + k];
      G[i * n + j] /= d;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < i; ++k) b[i] -= G[i * n + k] * b[k];
    b[i] /= G[i * n + i];
  }
  for (size_t i = n; i-- > 0;) {
    for (size_t k = i + 1; k < n; ++k) b[i] -= G[k * n + i] * b[k];
    b[i] /= G[i * n + i];
  }
  return b;
}

std::vector<double> phi_of(bool phi_log, size_t T) {
  std::vector<double> phi(T);
  for (size_t s = 0; s < T; ++s) phi[s] = phi_log ? std::log1p(double(s)) : double(s);
  return phi;
}

// BFGS on E(p) with Armijo backtracking; returns the value reached, p updated in place.
double minimize(const LagTarget& tgt, bool phi_log, std::vector<double>& p) {
  const size_t H = p.size();
  std::vector<double> g(H), g2(H), p2(H), dir(H), s(H), y(H);
  std::vector<double> Hinv(H * H, 0.0);
  for (size_t j = 0; j < H; ++j) Hinv[j * H + j] = 1;
  double f = projected_error(tgt, phi_log, p, &g);
  bool scaled = false;
  for (int it = 0; it < 300 && std::isfinite(f); ++it) {
    double gmax = 0;
    for (double v : g) gmax = std::max(gmax, std::fabs(v));
    if (gmax < 1e-12 || f < 1e-14) break;
    for (size_t j = 0; j < H; ++j) {
      dir[j] = 0;
      for (size_t k = 0; k < H; ++k) dir[j] -= Hinv[j * H + k] * g[k];
    }
    double slope = 0;
    for (size_t j = 0; j < H; ++j) slope += dir[j] * g[j];
    if (!(slope < 0)) {  // not a descent direction: restart from the gradient
      std::fill(Hinv.begin(), Hinv.end(), 0.0);
      for (size_t j = 0; j < H; ++j) { Hinv[j * H + j] = 1; dir[j] = -g[j]; }
      slope = 0;
      for (size_t j = 0; j < H; ++j) slope += dir[j] * g[j];
      scaled = false;
    }
    double alpha = scaled ? 1.0 : std::min(1.0, 0.1 / gmax), f2 = NAN;
    bool accepted = false;
    for (int k = 0; k < 40; ++k, alpha *= 0.5) {
      for (size_t j = 0; j < H; ++j) p2[j] = p[j] + alpha * dir[j];
      f2 = projected_error(tgt, phi_log, p2, &g2);
      if (std::isfinite(f2) && f2 <= f + 1e-4 * alpha * slope) { accepted = true; break; }
    }
    if (!accepted) break;
    double sy = 0, yy = 0;
    for (size_t j = 0; j < H; ++j) {
      s[j] = p2[j] - p[j];
      y[j] = g2[j] - g[j];
      sy += s[j] * y[j];
      yy += y[j] * y[j];
    }
    const double gain = f - f2;
    p = p2;
    g = g2;
    f = f2;
    if (gain < 1e-13 * std::max(f, 1e-12) && it > 20) break;
    if (sy <= 1e-300) continue;
    if (!scaled) {  // the first curvature sets the scale of the initial inverse Hessian
      std::fill(Hinv.begin(), Hinv.end(), 0.0);
      for (size_t j = 0; j < H; ++j) Hinv[j * H + j] = sy / yy;
      scaled = true;
    }
    // Hinv <- (I - rho s y^T) Hinv (I - rho y s^T) + rho s s^T
    const double rho = 1.0 / sy;
    std::vector<double> Hy(H, 0.0);
    for (size_t j = 0; j < H; ++j)
      for (size_t k = 0; k < H; ++k) Hy[j] += Hinv[j * H + k] * y[k];
    double yHy = 0;
    for (size_t j = 0; j < H; ++j) yHy += y[j] * Hy[j];
    for (size_t j = 0; j < H; ++j)
      for (size_t k = 0; k < H; ++k)
        Hinv[j * H + k] += (1 + rho * yHy) * rho * s[j] * s[k] - rho * (Hy[j] * s[k] + s[j] * Hy[k]);
  }
  return f;
}

}  // namespace

double projected_error(const LagTarget& tgt, bool phi_log, const std::vector<double>& p, std::vector<double>* grad, double* plain) {
  const size_t H = p.size(), n = H + 1, P = tgt.positions.size();
  const std::vector<double> phi = phi_of(phi_log, tgt.r.size());
  const std::vector<int>& pos = tgt.positions;
  // The target's weights and norm at each position.
  std::vector<double> w(P), ones;
  double norm2 = 0, b0 = 0;
  {
    double mass = 0, sq = 0;
    size_t i = 0;
    for (int t = 0; t <= pos.back(); ++t) {
      mass += tgt.r[size_t(t)];
      sq += tgt.r[size_t(t)] * tgt.r[size_t(t)];
      if (t != pos[i]) continue;
      w[i] = tgt.normalized ? (mass > 0 ? 1.0 / mass : 0.0) : 1.0;
      norm2 += w[i] * w[i] * sq;
      b0 += w[i] * tgt.r[0];
      ++i;
    }
  }
  std::vector<Prefix> Z(H), B(H), N(H * H);
  for (size_t h = 0; h < H; ++h) {
    Z[h] = prefix(p[h], ones, phi, pos);
    B[h] = prefix(p[h], tgt.r, phi, pos);
    for (size_t k = 0; k <= h; ++k) N[h * H + k] = prefix(p[h] + p[k], ones, phi, pos);
  }
  // Gram matrix of the basis (u_1..u_H, e_0) over the positions, and its products with R.
  std::vector<double> G(n * n, 0.0), b(n, 0.0);
  G[H * n + H] = double(P);
  b[H] = b0;
  for (size_t h = 0; h < H; ++h) {
    for (size_t i = 0; i < P; ++i) {
      G[h * n + H] += std::exp(-Z[h].log_sum[i]);
      b[h] += w[i] * std::exp(B[h].log_sum[i] - Z[h].log_sum[i]);
    }
    G[H * n + h] = G[h * n + H];
    for (size_t k = 0; k <= h; ++k) {
      double sum = 0;
      for (size_t i = 0; i < P; ++i) sum += std::exp(N[h * H + k].log_sum[i] - Z[h].log_sum[i] - Z[k].log_sum[i]);
      G[h * n + k] = G[k * n + h] = sum;
    }
  }
  const double lambda = kRidge * double(P);
  const std::vector<double> c = solve_spd(G, b, n, lambda);
  double err = norm2, cc = 0;
  for (size_t j = 0; j < n; ++j) {
    err -= 2 * c[j] * b[j];
    cc += c[j] * c[j];
    for (size_t k = 0; k < n; ++k) err += c[j] * G[j * n + k] * c[k];
  }
  err = std::max(err, 0.0) / norm2;
  if (plain) *plain = err;
  if (grad) {  // at the best (c, a), dE/dp_h = (-2 c_h db_h + sum_{j,k} c_j c_k dG_jk) / ||R||^2
    grad->assign(H, 0.0);
    for (size_t h = 0; h < H; ++h) {
      double db = 0, dG0 = 0;
      std::vector<double> dG(H, 0.0);
      for (size_t i = 0; i < P; ++i) {
        const double mh = Z[h].mean_phi[i];
        db += w[i] * std::exp(B[h].log_sum[i] - Z[h].log_sum[i]) * (mh - B[h].mean_phi[i]);
        dG0 += std::exp(-Z[h].log_sum[i]) * mh;
        for (size_t k = 0; k < H; ++k) {
          const Prefix& nk = h >= k ? N[h * H + k] : N[k * H + h];
          const double g = std::exp(nk.log_sum[i] - Z[h].log_sum[i] - Z[k].log_sum[i]);
          dG[k] += g * (mh - nk.mean_phi[i]) * (k == h ? 2.0 : 1.0);
        }
      }
      double d = -2 * c[h] * db + 2 * c[h] * c[H] * dG0;
      for (size_t k = 0; k < H; ++k) d += (k == h ? 1.0 : 2.0) * c[h] * c[k] * dG[k];
      (*grad)[h] = d / norm2;
    }
  }
  return err + lambda * cc / norm2;
}

BestFit best_fit(const LagTarget& tgt, bool phi_log, int heads, int restarts) {
  BestFit best;
  std::vector<int> ladder;
  for (int h = 1; h < heads; h *= 2) ladder.push_back(h);
  ladder.push_back(heads);
  const uint64_t stream = stream_id("best_fit");
  uint64_t draw = 0;
  for (int H : ladder) {
    std::vector<std::vector<double>> starts;
    if (!best.p.empty()) {  // warm: each head of the previous rung split in two
      std::vector<double> p;
      for (size_t j = 0; p.size() < size_t(H); ++j) {
        const double v = best.p[j % best.p.size()];
        p.push_back(v * (j < best.p.size() ? 0.97 : 1.03) + (j < best.p.size() ? -1e-3 : 1e-3));
      }
      starts.push_back(p);
    }
    std::vector<double> spread(static_cast<size_t>(H));  // the model's own initialization (transformer.cpp)
    for (int h = 0; h < H; ++h) spread[size_t(h)] = phi_log ? 0.25 + 3.0 * h / std::max(1, H - 1) : std::pow(2.0, -8.0 * (h + 1) / H);
    starts.push_back(spread);
    for (int r = 0; r < restarts; ++r) {
      std::vector<double> p(static_cast<size_t>(H));
      for (double& v : p) {
        const double mag = std::exp(rng_normal(17, stream, draw++) * 1.5 + (phi_log ? 0.0 : -2.0));
        v = (rng_uniform(17, stream, draw++) < 0.25 ? -1 : 1) * mag;
      }
      starts.push_back(p);
    }
    BestFit rung;
    double objective = INFINITY;
    for (auto& p : starts) {
      const double f = minimize(tgt, phi_log, p);
      if (std::isfinite(f) && f < objective) { objective = f; rung.p = p; }
    }
    projected_error(tgt, phi_log, rung.p, nullptr, &rung.rel);
    best = rung;
  }
  return best;
}

}  // namespace attnlab
