#pragma once
// The least error a model class can reach at all, for paper 2's DP-free layer on a linear
// lag target (train.best_fit; the rate theorem of fixed memory and E5's kernels).
//
// The target is y_t = A sum_{s<=t} R(t, s) x_{t-s}, x white (zero mean, unit variance), with
// R(t, s) = r(s) / sum_{s'<=t} r(s') (normalized: kernel_memory) or r(s) (sparse_memory: a
// delta at the lag). One layer of H DP-free heads, no FFN, no norm, no absolute positions,
// linear readout, computes yhat_t = a x_t + sum_h c_h sum_{s<=t} u_h(t, s) x_{t-s} + const
// with u_h(t, .) = softmax over s <= t of -p_h phi(s), phi(s) = s (lin) or log(1 + s) (log).
// For white x the relative MSE over the positions P is exactly
//   E(p, c, a) = sum_{t in P} ||R_t - K_t||^2 / sum_{t in P} ||R_t||^2,  K_t = a e_0 + sum_h c_h u_h(t, .).
// For fixed p the best (c, a) solve a linear least-squares problem (variable projection), so
// the search is over p in R^H only: BFGS with analytic gradients from several starts, the
// starts of H warm from the best of H / 2 (each head split in two), so that more heads
// start where fewer ended. Every sum over s is a running (prefix) sum over t, so one
// evaluation costs O(H^2 T), not O(H T^2).
#include <string>
#include <vector>

#include "tasks/task.h"

namespace attnlab {

struct BestFit {
  double rel = 1;             // the least relative error found
  std::vector<double> p;      // its p_h
};

// phi_log = false: lin (phi(s) = s); true: log (phi(s) = log(1 + s)).
// The variable-projected objective at p: the least-squares fit of (c, a) with a ridge of
// 1e-8 per position on them, its objective (relative error + ridge term) returned, its gradient
// in p (if grad), and the plain relative error of that fit (if plain): an error the model can
// reach, and within rounding of the least one at this p where the fit needs no coefficients
// beyond about 1e4.
double projected_error(const LagTarget& tgt, bool phi_log, const std::vector<double>& p, std::vector<double>* grad = nullptr,
                       double* plain = nullptr);
// The best of the searches described above, for H heads.
BestFit best_fit(const LagTarget& tgt, bool phi_log, int heads, int restarts = 6);

}  // namespace attnlab
