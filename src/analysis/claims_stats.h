#pragma once
// Internal to the claim checks (claims.cpp, claims_crossing.cpp): values by seed, the seed
// bootstrap and the log-log slope they share.
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "analysis/claims.h"
#include "analysis/verdict.h"
#include "core/rng.h"

namespace attnlab::claims_detail {

inline constexpr int kBoot = 2000;

inline std::string point_text(const Point& p) {
  std::string s;
  for (const auto& [k, v] : p) s += (s.empty() ? "" : ", ") + k + " = " + v;
  return s;
}

// Values by seed: y[i] holds, for the i-th group (an x, or one pair of a comparison), each
// seed's value(s). The bootstrap draws seeds, never single values.
struct BySeed {
  std::vector<int64_t> seeds;                                // distinct seeds with a value
  std::vector<std::map<int64_t, std::vector<double>>> y;     // group -> seed -> values
};

// The runs of a point that gave no value, as "seed=2 (diverged)".
inline std::string missing_runs(const std::vector<const Observation*>& runs, const std::string& y) {
  std::string s;
  for (const auto* o : runs) {
    const bool ok = o->status == "completed" && std::isfinite(summary_value(o->summary, y));
    if (ok) continue;
    const std::string why = o->status == "completed" ? "no " + y
                            : o->status == "pending" || o->status == "running" ? "not run"
                                                                               : o->status;
    s += (s.empty() ? "" : ", ") + o->id + " (" + why + ")";
  }
  return s;
}

// A statistic known only to lie in [lo, hi] (e.g. a slope through a value known only to be
// beyond a grid); lo == hi for an ordinary one.
struct Bounds {
  double lo = NAN, hi = NAN;
};

// statistic(group means) on the data, and on kBoot resamples of the seeds -> measured and the
// 2.5% and 97.5% quantiles. A resample in which a group has no drawn seed, or whose statistic
// is not finite, is dropped and counted. A statistic may return Bounds: the interval is then
// the 2.5% quantile of the lower bounds and the 97.5% quantile of the upper bounds (a bound may
// be infinite), so that a resample with an unknown value counts against the claim on both
// sides instead of being dropped. `undefined` says why the statistic can have no value.
template <class F>
void bootstrap(const BySeed& d, F stat, ClaimResult& r, uint64_t seed, const std::string& undefined) {
  auto bounds = [&stat](const std::vector<double>& m) {
    if constexpr (std::is_same_v<decltype(stat(m)), Bounds>) {
      return stat(m);
    } else {
      const double v = stat(m);
      return Bounds{v, v};
    }
  };
  auto usable = [](const Bounds& b) { return b.lo == b.hi ? std::isfinite(b.lo) : !std::isnan(b.lo) && !std::isnan(b.hi); };
  const size_t G = d.y.size(), S = d.seeds.size();
  std::vector<double> means(G);
  auto group_mean = [&](size_t g, const std::vector<int64_t>& drawn) {
    double sum = 0;
    size_t n = 0;
    for (int64_t s : drawn) {
      auto it = d.y[g].find(s);
      if (it == d.y[g].end()) continue;
      for (double v : it->second) { sum += v; ++n; }
    }
    return n ? sum / double(n) : NAN;
  };
  for (size_t g = 0; g < G; ++g) means[g] = group_mean(g, d.seeds);
  const Bounds whole = bounds(means);
  r.measured = whole.lo == whole.hi ? whole.lo : NAN;
  // Known on the data only as a bound with one finite end (a curve that reaches the level
  // outside the grid at some x): the interval of bounds can still lie on one side of a claim.
  const bool bounded = whole.lo != whole.hi && usable(whole) && (std::isfinite(whole.lo) || std::isfinite(whole.hi));
  std::vector<double> lows, highs;
  std::vector<int64_t> drawn(S);
  for (int b = 0; b < kBoot; ++b) {
    for (size_t j = 0; j < S; ++j) drawn[j] = d.seeds[rng_below(seed, uint64_t(b), uint64_t(j), S)];
    bool ok = true;
    for (size_t g = 0; g < G && ok; ++g) ok = std::isfinite(means[g] = group_mean(g, drawn));
    const Bounds v = ok ? bounds(means) : Bounds{};
    if (!usable(v)) continue;
    lows.push_back(v.lo);
    highs.push_back(v.hi);
    if (v.lo != v.hi) ++r.resamples_beyond_grid;
  }
  r.resamples = kBoot;
  r.resamples_dropped = kBoot - int(lows.size());
  r.seeds = int(S);
  if (lows.size() < size_t(kBoot) / 2 || (!std::isfinite(r.measured) && !bounded)) {
    r.note = "the statistic is undefined on this data (" + undefined + ")";
    if (std::isfinite(r.measured))
      r.note += "; " + std::to_string(r.resamples_dropped) + " of " + std::to_string(kBoot) + " resamples gave no finite value";
    return;
  }
  std::sort(lows.begin(), lows.end());
  std::sort(highs.begin(), highs.end());
  r.ci_low = lows[size_t(0.025 * double(lows.size() - 1))];
  r.ci_high = highs[size_t(0.975 * double(highs.size() - 1))];
  r.evaluated = true;
  if (bounded)
    r.note = "on the data the statistic is only bounded, in [" + fmt_num(whole.lo) + ", " + fmt_num(whole.hi) + "]";
  if (r.resamples_dropped * 100 > kBoot)
    r.note = std::to_string(r.resamples_dropped) + " of " + std::to_string(kBoot) +
             " bootstrap resamples gave a non-finite statistic and were dropped";
}

inline double slope_of(const std::vector<double>& x, const std::vector<double>& m) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  int n = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!(x[i] > 0) || !(m[i] > 0)) return NAN;
    const double lx = std::log(x[i]), ly = std::log(m[i]);
    sx += lx; sy += ly; sxx += lx * lx; sxy += lx * ly; ++n;
  }
  if (n < 2) return NAN;
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

// crossing (claims_crossing.cpp)
ClaimResult evaluate_crossing(const ExperimentSpec& spec, ClaimResult r, const ClaimSpec& c, const std::vector<Observation>& obs,
                              const Point& filter, uint64_t seed);

}  // namespace attnlab::claims_detail
