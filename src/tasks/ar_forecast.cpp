#include "tasks/ar_forecast.h"

#include <cmath>

#include "core/error.h"
#include "core/rng.h"

namespace attnlab {

namespace {

// x_0..x_{L-1} ~ N(0, 1), then x_t = a x_{t-L} + sigma eps_t: `len` values of stream `name`.
std::vector<double> ar_series(const TaskConfig& c, uint64_t seed, const char* name, int64_t len) {
  std::vector<double> x(size_t(len), 0.0);
  for (int64_t t = 0; t < len; ++t)
    x[size_t(t)] = t < c.lag ? rng_normal(seed, stream_id(name), uint64_t(t))
                             : c.ar_coef * x[size_t(t - c.lag)] + c.noise * rng_normal(seed, stream_id(name), uint64_t(t));
  return x;
}

void mean_sd(const std::vector<double>& v, double& mean, double& sd) {
  mean = 0;
  for (double x : v) mean += x;
  mean /= double(v.size());
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean);
  sd = std::sqrt(var / double(v.size()));
  if (!(sd > 0)) sd = 1.0;
}

}  // namespace

ArForecastTask::ArForecastTask(const TaskConfig& cfg, uint64_t seed) : cfg_(cfg) {
  if (cfg.n_train <= 0) throw UserError("task.n_train: ar_forecast needs a fixed training set (set task.n or task.n_train)");
  const int64_t sizes[3] = {cfg.n_train, cfg.n_val, cfg.n_test};
  const int T = cfg.seq_len;
  if (cfg.ar_split == "random") {
    // The authors' E4: one series; windows s = burn_in .. burn_in + n - 1 shuffled (Fisher-Yates)
    // and cut into the splits, so that train and validation windows overlap in values.
    const int64_t n = sizes[0] + sizes[1] + sizes[2];
    series_[0] = ar_series(cfg, seed, "ar/series", cfg.burn_in + n + T + 1);
    std::vector<int64_t> perm(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) perm[size_t(i)] = cfg.burn_in + i;
    for (int64_t i = n - 1; i > 0; --i) {
      const auto j = int64_t(rng_uniform(seed, stream_id("ar/split"), uint64_t(i)) * double(i + 1));
      std::swap(perm[size_t(i)], perm[size_t(std::min(j, i))]);
    }
    for (int s = 0, at = 0; s < 3; at += int(sizes[s]), ++s)
      windows_[s].assign(perm.begin() + at, perm.begin() + at + sizes[s]);
    std::vector<double> targets, inputs;
    for (int64_t w : perm) targets.push_back(series_[0][size_t(w + T)]);
    inputs.assign(series_[0].begin() + cfg.burn_in, series_[0].end());
    mean_sd(targets, out_mean_, out_sd_);
    if (cfg.standardize == "all") {
      mean_sd(inputs, in_mean_, in_sd_);
      out_mean_ = in_mean_;
      out_sd_ = in_sd_;
    }
  } else {
    const char* names[3] = {"ar/train", "ar/val", "ar/test"};
    for (int s = 0; s < 3; ++s) {
      const auto x = ar_series(cfg, seed, names[s], cfg.burn_in + sizes[s] + T + 1);
      series_[s].assign(x.begin() + cfg.burn_in, x.end());
      windows_[s].resize(size_t(sizes[s]));
      for (int64_t i = 0; i < sizes[s]; ++i) windows_[s][size_t(i)] = i;
    }
    // Statistics of the training series (its values, or its windows' targets).
    std::vector<double> targets(series_[0].begin() + T, series_[0].begin() + T + sizes[0]);
    mean_sd(cfg.standardize == "all" ? series_[0] : targets, out_mean_, out_sd_);
    if (cfg.standardize == "all") {
      in_mean_ = out_mean_;
      in_sd_ = out_sd_;
    }
  }
}

void ArForecastTask::fill(Split split, const int64_t* indices, int B, Batch& batch) const {
  const int T = cfg_.seq_len, D = d_in();
  const bool one = cfg_.ar_split == "random";
  const auto& s = series_[one ? 0 : int(split)];
  const auto& w = windows_[int(split)];
  batch.shape_real(B, T, D, size_t(B), size_t(B), 1.f);  // one target per sequence
  for (int b = 0; b < B; ++b) {
    const int64_t start = w[size_t(indices[b])];
    for (int t = 0; t < T; ++t) {
      float* row = batch.x.data() + (size_t(b) * T + t) * D;
      row[0] = float((s[size_t(start + t)] - in_mean_) / in_sd_);
      const double pos = cfg_.time_origin == "window" ? double(t) : double(start + t);
      for (int k = 0; k < cfg_.time_channels; ++k) {
        const double ang = 2.0 * 3.14159265358979323846 * pos / (32.0 * std::ldexp(1.0, k));
        row[1 + 2 * k] = float(std::sin(ang));
        row[2 + 2 * k] = float(std::cos(ang));
      }
    }
    batch.y[b] = float((s[size_t(start + T)] - out_mean_) / out_sd_);
  }
  // The time channels of window positions are the same in every window.
  if (cfg_.time_origin == "window" && cfg_.time_channels > 0) batch.shared_from = 1;
}

void ar_forecast_keys(Keys& k, TaskConfig& c) {
  k.integer("lag", c.lag, 1, 1 << 20);  // L in x_t = a x_{t-L} + eps_t
  if (k.reading() && !k.has("seq_len")) c.seq_len = c.lag + 1;  // default window: the lag plus the current value
  k.number("ar_coef", c.ar_coef, -1e9);               // a
  k.number("noise", c.noise, 0.0, true);              // sigma of eps_t (default sqrt(0.1): variance 0.1)
  k.integer("burn_in", c.burn_in, 0);                 // steps before the first window
  k.integer("time_channels", c.time_channels, 0, 16); // pairs of sin/cos channels, periods 32 * 2^k
  k.choice("time_origin", c.time_origin, {"window", "series"});  // t of the time channels
  k.choice("split", c.ar_split, {"random", "series"});           // windows of one series split at random | a series per split
  k.choice("standardize", c.standardize, {"targets", "all"});    // z-score the targets only | the whole series
  if (!k.reading()) return;
  c.d_in = 1 + 2 * c.time_channels;
  c.d_out = 1;
  if (c.lag >= c.seq_len) k.fail("lag", "must be < task.seq_len (" + std::to_string(c.seq_len) + ") so the window sees x_{t-L}");
}

}  // namespace attnlab
