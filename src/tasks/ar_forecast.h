#pragma once
// Task `ar_forecast` (paper 3, E4): a scalar series x_t = a x_{t-L} + eps_t, eps_t ~ N(0, sigma^2),
// whose first L values are N(0, 1). A window is x_{s..s+T-1} (T = seq_len, default L + 1) and
// its target the next value x_{s+T}; each token is [x, sin, cos, ...]: K = time_channels pairs
// sin(2 pi t / P_k), cos(2 pi t / P_k), P_k = 32 * 2^k. The defaults are the authors' setup
// (../shared/papers/p3_authors_setup.md), each other choice behind a key:
//   - noise = sqrt(0.1) (eps has variance 0.1), burn_in = 800, time_channels = 8 (d = 17);
//   - time_origin = "window": t is the position in the window ("series": the series index);
//   - split = "random": one series, windows s = burn_in .. burn_in + n - 1, split at random into
//     train / val / test ("series": each split its own series, no value shared);
//   - standardize = "targets": targets z-scored with the mean and deviation over all windows'
//     targets, inputs raw ("all": the series z-scored with the training series' statistics).
#include "tasks/task.h"
#include "io/config_keys.h"

namespace attnlab {

class ArForecastTask : public Task {
 public:
  ArForecastTask(const TaskConfig& cfg, uint64_t seed);
  int d_in() const override { return 1 + 2 * cfg_.time_channels; }
  int d_out() const override { return 1; }
  bool last_only() const override { return true; }
  void fill(Split split, const int64_t* indices, int B, Batch& batch) const override;

 private:
  TaskConfig cfg_;
  std::vector<double> series_[3];      // split = random: one series, in series_[0]
  std::vector<int64_t> windows_[3];    // split = random: the window starts of each split
  double in_mean_ = 0, in_sd_ = 1;     // inputs: (x - in_mean) / in_sd
  double out_mean_ = 0, out_sd_ = 1;   // targets likewise
};

// Its own config keys (task.lag, ar_coef, noise, burn_in, time_channels, time_origin, split,
// standardize); d_in and d_out follow from them.
void ar_forecast_keys(Keys& k, TaskConfig& c);

}  // namespace attnlab
