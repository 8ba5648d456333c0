#pragma once
// Task `ar_forecast`: a scalar series x_t = a x_{t-L} + eps_t, eps_t ~ N(0, sigma^2), started
// from zeros and run for `burn_in` steps. Sample i of a split is the window x_{i..i+T-1}
// (T = seq_len, default L + 1) and its target is the next value x_{i+T}; values are z-scored
// with the mean and standard deviation of the training series. Each split is its own series
// (a separate random stream), so no value is shared between splits. Optional time channels:
// k = 0..K-1 pairs sin(2 pi t / P_k), cos(2 pi t / P_k), P_k = 32 * 2^k, t the series index.
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
  const std::vector<double>& series(Split s) const { return series_[int(s)]; }  // z-scored

 private:
  TaskConfig cfg_;
  std::vector<double> series_[3];
};

// Its own config keys (task.lag, ar_coef, noise, burn_in, time_channels); d_in and d_out
// follow from them.
void ar_forecast_keys(Keys& k, TaskConfig& c);

}  // namespace attnlab
