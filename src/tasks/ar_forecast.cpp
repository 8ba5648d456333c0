#include "tasks/ar_forecast.h"

#include <cmath>

#include "core/error.h"
#include "core/rng.h"

namespace attnlab {

ArForecastTask::ArForecastTask(const TaskConfig& cfg, uint64_t seed) : cfg_(cfg) {
  if (cfg.n_train <= 0) throw UserError("task.n_train: ar_forecast needs a fixed training set (set task.n or task.n_train)");
  const int64_t sizes[3] = {cfg.n_train, cfg.n_val, cfg.n_test};
  const char* names[3] = {"ar/train", "ar/val", "ar/test"};
  for (int s = 0; s < 3; ++s) {
    const int64_t len = sizes[s] + cfg.seq_len + 1, total = cfg.burn_in + len;
    std::vector<double> x(size_t(total), 0.0);
    for (int64_t t = 0; t < total; ++t)
      x[t] = (t >= cfg.lag ? cfg.ar_coef * x[t - cfg.lag] : 0.0) + cfg.noise * rng_normal(seed, stream_id(names[s]), uint64_t(t));
    series_[s].assign(x.begin() + cfg.burn_in, x.end());
  }
  double mean = 0, var = 0;
  for (double v : series_[0]) mean += v;
  mean /= double(series_[0].size());
  for (double v : series_[0]) var += (v - mean) * (v - mean);
  const double sd = std::sqrt(var / double(series_[0].size()));
  for (auto& s : series_)
    for (double& v : s) v = (v - mean) / (sd > 0 ? sd : 1.0);
}

void ArForecastTask::fill(Split split, const int64_t* indices, int B, Batch& batch) const {
  const int T = cfg_.seq_len, D = d_in();
  const auto& s = series_[int(split)];
  batch.shape_real(B, T, D, size_t(B), size_t(B), 1.f);  // one target per sequence
  for (int b = 0; b < B; ++b) {
    const int64_t i = indices[b];
    for (int t = 0; t < T; ++t) {
      float* row = batch.x.data() + (size_t(b) * T + t) * D;
      row[0] = float(s[size_t(i + t)]);
      for (int k = 0; k < cfg_.time_channels; ++k) {
        const double w = 2.0 * 3.14159265358979323846 / (32.0 * std::pow(2.0, k));
        row[1 + 2 * k] = float(std::sin(w * double(i + t)));
        row[2 + 2 * k] = float(std::cos(w * double(i + t)));
      }
    }
    batch.y[b] = float(s[size_t(i + T)]);
  }
}

void ar_forecast_keys(Keys& k, TaskConfig& c) {
  k.integer("lag", c.lag, 1, 1 << 20);  // L in x_t = a x_{t-L} + eps_t
  if (k.reading() && !k.has("seq_len")) c.seq_len = c.lag + 1;  // default window: the lag plus the current value
  k.number("ar_coef", c.ar_coef, -1e9);               // a
  k.number("noise", c.noise, 0.0, true);              // sigma of eps_t
  k.integer("burn_in", c.burn_in, 0);                 // steps discarded before the first window
  k.integer("time_channels", c.time_channels, 0, 16); // pairs of sin/cos channels, periods 32 * 2^k
  if (!k.reading()) return;
  c.d_in = 1 + 2 * c.time_channels;
  c.d_out = 1;
  if (c.lag >= c.seq_len) k.fail("lag", "must be < task.seq_len (" + std::to_string(c.seq_len) + ") so the window sees x_{t-L}");
}

}  // namespace attnlab
