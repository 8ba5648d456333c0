// Task ar_forecast against its definition, with the authors' E4 setup as the default:
// eps of variance 0.1, 8 sin/cos pairs with periods 32 * 2^k over the window position (d = 17),
// one series whose windows are split at random, targets z-scored over all windows and
// inputs raw; and the older variants behind their keys.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "core/error.h"
#include "io/config.h"
#include "tasks/task.h"

using namespace attnlab;

namespace {

RunConfig config(const std::string& extra) {
  return parse_run_config("[task]\nkind = \"ar_forecast\"\nlag = 4\nn = 2000\n" + extra +
                              "[model]\nkind = \"shallow_attention\"\nwidth = 4\n",
                          "ar.toml", {});
}

Batch all_of(const Task& t, Split s, int n) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) idx[size_t(i)] = i;
  Batch b;
  t.fill(s, idx.data(), n, b);
  return b;
}

double var_of(const std::vector<double>& v) {
  double m = 0, q = 0;
  for (double x : v) m += x / double(v.size());
  for (double x : v) q += (x - m) * (x - m) / double(v.size());
  return q;
}

}  // namespace

TEST(ArForecast, DefaultsAreTheAuthorsSetup) {
  const RunConfig c = config("");
  EXPECT_EQ(c.task.d_in, 17);  // x and 8 sin/cos pairs
  EXPECT_EQ(c.task.seq_len, 5);
  EXPECT_EQ(c.task.burn_in, 800);
  EXPECT_NEAR(c.task.noise * c.task.noise, 0.1, 1e-12);
  EXPECT_EQ(c.task.time_origin, "window");
  EXPECT_EQ(c.task.ar_split, "random");
  EXPECT_EQ(c.task.standardize, "targets");
  const auto t = make_task(c.task, 1);
  const Batch b = all_of(*t, Split::train, int(c.task.n_train));
  const int T = 5, D = 17;
  // Time channels: sin and cos of 2 pi t / (32 * 2^k), t the position in the window.
  for (int w : {0, 7, 1234})
    for (int pos = 0; pos < T; ++pos)
      for (int k = 0; k < 8; ++k) {
        const float* row = b.x.data() + (size_t(w) * T + pos) * D;
        const double ang = 2 * M_PI * pos / (32.0 * std::pow(2.0, k));
        EXPECT_NEAR(row[1 + 2 * k], std::sin(ang), 1e-6);
        EXPECT_NEAR(row[2 + 2 * k], std::cos(ang), 1e-6);
      }
  // Inputs raw: the stationary variance of x_t = 0.9 x_{t-4} + eps is 0.1 / (1 - 0.81).
  std::vector<double> xs, ys;
  for (int64_t w = 0; w < c.task.n_train; ++w) {
    xs.push_back(b.x[size_t(w) * T * D]);
    ys.push_back(b.y[size_t(w)]);
  }
  EXPECT_NEAR(var_of(xs), 0.1 / (1 - 0.81), 0.08);
  // Targets z-scored over all windows: unit variance over train and validation together.
  const Batch v = all_of(*t, Split::val, int(c.task.n_val));
  std::vector<double> all = ys;
  all.insert(all.end(), v.y.begin(), v.y.end());
  double m = 0;
  for (double y : all) m += y / double(all.size());
  EXPECT_NEAR(m, 0.0, 1e-6);
  EXPECT_NEAR(var_of(all), 1.0, 1e-6);
}

// With (almost) no noise the target is exactly 0.9 times the window's value at position 1 (x_{s+T-L}),
// once both are on the same scale; the windows of the splits are distinct starts of one series.
TEST(ArForecast, TargetsFollowTheRecursionAndSplitsShareOneSeries) {
  for (const char* std_mode : {"targets", "all"}) {
    SCOPED_TRACE(std_mode);
    const RunConfig c = config(std::string("noise = 1e-12\nburn_in = 8\nstandardize = \"") + std_mode + "\"\n");
    const auto t = make_task(c.task, 3);
    const Batch b = all_of(*t, Split::train, 200);
    // Recover the scale: y = (x_{s+T} - mu_y) / sd_y and x_{s+T} = 0.9 x_{s+1} (inputs raw or z-scored).
    std::vector<double> a, y;
    for (int w = 0; w < 200; ++w) {
      a.push_back(0.9 * b.x[(size_t(w) * 5 + 1) * 17]);
      y.push_back(b.y[size_t(w)]);
    }
    // y is an affine function of a: check the residual of the least-squares line is zero.
    double ma = 0, my = 0, saa = 0, say = 0;
    for (size_t i = 0; i < a.size(); ++i) { ma += a[i] / 200.0; my += y[i] / 200.0; }
    for (size_t i = 0; i < a.size(); ++i) { saa += (a[i] - ma) * (a[i] - ma); say += (a[i] - ma) * (y[i] - my); }
    double res = 0;
    for (size_t i = 0; i < a.size(); ++i) res = std::max(res, std::fabs(y[i] - my - say / saa * (a[i] - ma)));
    EXPECT_LT(res, 1e-4);
  }
  // Train and validation windows: consecutive windows of one series overlap (the values of
  // window s + 1 are those of window s shifted by one), so some validation window's first
  // values appear inside a training window; and no window is in both.
  const RunConfig c = config("");
  const auto t = make_task(c.task, 3);
  const Batch tr = all_of(*t, Split::train, int(c.task.n_train)), va = all_of(*t, Split::val, int(c.task.n_val));
  std::set<std::vector<float>> train_windows, shifted;
  for (int64_t w = 0; w < c.task.n_train; ++w) {
    std::vector<float> win;
    for (int p = 0; p < 5; ++p) win.push_back(tr.x[(size_t(w) * 5 + p) * 17]);
    train_windows.insert(win);
    shifted.insert(std::vector<float>(win.begin() + 1, win.end()));
  }
  int overlaps = 0;
  for (int64_t w = 0; w < c.task.n_val; ++w) {
    std::vector<float> win;
    for (int p = 0; p < 5; ++p) win.push_back(va.x[(size_t(w) * 5 + p) * 17]);
    EXPECT_FALSE(train_windows.count(win)) << "window " << w << " is in both splits";
    overlaps += int(shifted.count(std::vector<float>(win.begin(), win.end() - 1)));
  }
  EXPECT_GT(overlaps, int(c.task.n_val) / 2);
}

// The older setup behind its keys: a series per split (no window shared), time channels over
// the series index, the series z-scored.
TEST(ArForecast, OlderVariantsBehindTheirKeys) {
  const RunConfig c = config("split = \"series\"\ntime_origin = \"series\"\nstandardize = \"all\"\ntime_channels = 2\n");
  EXPECT_EQ(c.task.d_in, 5);
  const auto t = make_task(c.task, 2);
  const Batch b = all_of(*t, Split::train, 3);
  for (int w = 0; w < 3; ++w)
    for (int pos = 0; pos < 5; ++pos) {
      const double ang = 2 * M_PI * double(w + pos) / 32.0;  // window w starts at series index w
      EXPECT_NEAR(b.x[(size_t(w) * 5 + pos) * 5 + 1], std::sin(ang), 1e-5);
    }
  EXPECT_THROW(config("split = \"halves\"\n"), UserError);
}

// A batch says which channels every window shares: the time channels, at window positions.
TEST(ArForecast, TimeChannelsAreSharedByTheBatchAtWindowPositions) {
  for (const char* origin : {"window", "series"}) {
    const RunConfig c = config(std::string("time_origin = \"") + origin + "\"\n");
    auto t = make_task(c.task, 1);
    const Batch b = all_of(*t, Split::train, 50);
    const int T = b.T, d = t->d_in();
    bool same = true;
    for (int s = 1; s < 50; ++s)
      for (int p = 0; p < T; ++p)
        for (int k = 1; k < d; ++k) same = same && b.x[(size_t(s) * T + p) * d + k] == b.x[size_t(p) * d + k];
    EXPECT_EQ(same, std::string(origin) == "window") << origin;
    EXPECT_EQ(b.shared_from, std::string(origin) == "window" ? 1 : -1) << origin;
  }
}
