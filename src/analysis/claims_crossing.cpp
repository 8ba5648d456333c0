// Crossing claims (claims.h): per value of x, the value of `across` where the seed-mean y
// reaches a level, and the log-log slope of that value on x, with bounds where the crossing
// lies beyond the grid.
#include <algorithm>
#include <cmath>
#include <set>

#include "analysis/claims_stats.h"

namespace attnlab::claims_detail {

namespace {

// log of the value of `across` at which the mean y first falls to `level`, interpolated
// linearly in log-log between the last point above and the first at or below it (across
// ascending). When the crossing is not inside the grid, only a bound is known: y never falls to
// the level -> [log of the largest value, +inf]; y is already there at the smallest value ->
// [-inf, log of the smallest]. NaN if a mean is not positive.
Bounds crossing_of(const std::vector<double>& a, const double* m, double level) {
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(m[i] > 0)) return {};
    if (m[i] > level) continue;
    if (i == 0) return {-INFINITY, std::log(a[0])};
    const double t = (std::log(level) - std::log(m[i - 1])) / (std::log(m[i]) - std::log(m[i - 1]));
    const double v = std::log(a[i - 1]) + t * (std::log(a[i]) - std::log(a[i - 1]));
    return {v, v};
  }
  return {std::log(a.back()), INFINITY};
}

// The least-squares slope of ly on log x, where each ly_i is known to lie in [lo_i, hi_i]: the
// slope is sum_i c_i ly_i with c_i = (log x_i - mean) / Sxx, so its bounds take each ly_i at
// the end that lowers (raises) it. A bound may be infinite; NaN if a bound or x is not usable.
Bounds slope_bounds(const std::vector<double>& x, const std::vector<Bounds>& ly) {
  const size_t n = x.size();
  if (n < 2) return {};
  double mean = 0, sxx = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!(x[i] > 0) || std::isnan(ly[i].lo) || std::isnan(ly[i].hi)) return {};
    mean += std::log(x[i]) / double(n);
  }
  for (size_t i = 0; i < n; ++i) sxx += (std::log(x[i]) - mean) * (std::log(x[i]) - mean);
  if (!(sxx > 0)) return {};
  Bounds s{0, 0};
  for (size_t i = 0; i < n; ++i) {
    const double c = (std::log(x[i]) - mean) / sxx;
    if (c > 0) { s.lo += c * ly[i].lo; s.hi += c * ly[i].hi; }
    if (c < 0) { s.lo += c * ly[i].hi; s.hi += c * ly[i].lo; }
  }
  return s;
}

// One selection of a crossing claim: its values of x; for each x, the values of `across` it
// has runs at (a zipped design may give each x a grid of its own) and where its groups (one
// per value of `across`) start in the bootstrap's data.
struct CrossingPart {
  std::vector<double> xs;
  std::vector<std::vector<double>> as;
  std::vector<size_t> at;
};

// Adds the runs matching `filter` to d as groups (x, across); "" or the note that stops the claim.
std::string collect_crossing(const ExperimentSpec& spec, const ClaimSpec& c, const std::vector<Observation>& obs, const Point& filter,
                             const std::string& name, ClaimResult& r, BySeed& d, std::set<int64_t>& seeds, CrossingPart& part,
                             std::string& partial) {
  std::vector<const Observation*> sel;
  for (const auto& o : obs)
    if (point_matches(o.point, filter)) sel.push_back(&o);
  const std::string where = point_text(filter);
  if (sel.empty()) return "no run matches " + (where.empty() ? std::string("the claim") : where);
  // Keys zipped with x or across move with them, and are no other axis.
  std::set<std::string> moving = {c.x, c.across};
  for (const auto& ax : spec.axes)
    for (const std::string& key : {c.x, c.across})
      if (std::find(ax.keys.begin(), ax.keys.end(), key) != ax.keys.end()) moving.insert(ax.keys.begin(), ax.keys.end());
  std::map<std::string, std::set<std::string>> values;
  for (const auto* o : sel)
    for (const auto& [k, v] : o->point)
      if (!moving.count(k)) values[k].insert(v);
  for (const auto& [k, vs] : values)
    if (vs.size() >= 2) return "the selected runs" + name + " differ in " + k + ": pin it with where = { \"" + k + "\" = ... }";
  std::map<double, std::map<double, std::vector<const Observation*>>> grid;  // x -> across -> runs
  std::map<std::pair<double, double>, std::string> labels;
  for (const auto* o : sel) {
    auto ix = o->point.find(c.x), ia = o->point.find(c.across);
    const double x = ix == o->point.end() ? NAN : point_number(ix->second);
    const double a = ia == o->point.end() ? NAN : point_number(ia->second);
    if (!std::isfinite(x)) return c.x + " is not a numeric axis of these runs";
    if (!std::isfinite(a)) return c.across + " is not a numeric axis of these runs";
    grid[x][a].push_back(o);
    labels[{x, a}] = name.empty() ? c.x + " = " + ix->second + ", " + c.across + " = " + ia->second
                                  : name.substr(1) + ": " + c.x + " = " + ix->second + ", " + c.across + " = " + ia->second;
  }
  if (grid.size() < 2) return "fewer than two values of " + c.x + " in the selected runs" + name;
  // Every planned run is an observation (pending ones too), so the values of `across` an x
  // has runs at are its grid; a run without a value there is missing, not off the grid.
  std::string empty;
  for (const auto& [x, row] : grid) {
    part.xs.push_back(x);
    part.as.emplace_back();
    part.at.push_back(d.y.size());
    for (const auto& [a, runs] : row) {
      part.as.back().push_back(a);
      PointCount pc;
      pc.label = labels[{x, a}];
      std::map<int64_t, std::vector<double>> ys;
      for (const auto* o : runs) {
        const double y = o->status == "completed" ? summary_value(o->summary, c.y) : NAN;
        count_run(pc, *o, y);
        if (std::isfinite(y)) { ys[o->seed].push_back(y); seeds.insert(o->seed); }
      }
      if (ys.empty()) empty += (empty.empty() ? "" : "; ") + pc.label + ": " + missing_runs(runs, c.y);
      else if (pc.completed - pc.no_value < pc.runs) partial += (partial.empty() ? "" : "; ") + pc.label + ": " + missing_runs(runs, c.y);
      r.points.push_back(pc);
      d.y.push_back(std::move(ys));
    }
  }
  return empty.empty() ? "" : "no completed run with " + c.y + " at " + empty;
}

// The selection's slope of log(across at the crossing) on log x, from the group means m.
Bounds crossing_slope(const CrossingPart& p, const std::vector<double>& m, double level) {
  std::vector<Bounds> need(p.xs.size());
  for (size_t i = 0; i < p.xs.size(); ++i) need[i] = crossing_of(p.as[i], m.data() + p.at[i], level);
  return slope_bounds(p.xs, need);
}

// Where the seed means of a selection do not cross the level inside the grid, for the note.
std::string not_crossing(const CrossingPart& p, const BySeed& d, const ClaimSpec& c, const std::string& name) {
  std::string where_not;
  for (size_t i = 0; i < p.xs.size(); ++i) {
    const size_t A = p.as[i].size();
    std::vector<double> m(A);
    for (size_t j = 0; j < A; ++j) {
      double sum = 0;
      size_t n = 0;
      for (const auto& [s, v] : d.y[p.at[i] + j])
        for (double y : v) { sum += y; ++n; }
      m[j] = sum / double(n);
    }
    if (const Bounds b = crossing_of(p.as[i], m.data(), c.level); b.lo != b.hi)
      where_not += (where_not.empty() ? "" : ", ") + fmt_num(p.xs[i]) + (m[0] <= c.level ? " (already at the smallest " + c.across + ")" : " (never)");
  }
  return where_not.empty() ? "" : "the mean " + c.y + name + " does not cross " + fmt_num(c.level) + " inside the " + c.across + " grid at " + c.x + " = " + where_not;
}

}  // namespace

// crossing: per value of x, the value of `across` where the mean y reaches `level`; the
// statistic is the least-squares slope of log(that value) on log x (e.g. the width needed for
// a fixed training error against the sample size n). With a = {...} and b = {...}: the slope
// of the runs at a minus that of the runs at b (e.g. how much faster the heads needed grow
// with one encoding than with another), resampled over the same seeds.
ClaimResult evaluate_crossing(const ExperimentSpec& spec, ClaimResult r, const ClaimSpec& c, const std::vector<Observation>& obs, const Point& filter, uint64_t seed) {
  const bool pair = !c.a.empty();
  const std::string stat = "slope of log(" + c.across + " where " + c.y + " reaches " + fmt_num(c.level) + ") on log " + c.x;
  r.expected = pair ? stat + " at " + point_text(c.a) + " minus at " + point_text(c.b) + " in [" + fmt_num(c.lo) + ", " + fmt_num(c.hi) + "]"
                    : stat + " in [" + fmt_num(c.lo) + ", " + fmt_num(c.hi) + "]";
  BySeed d;
  std::set<int64_t> seeds;
  std::string partial;
  std::vector<CrossingPart> parts(pair ? 2 : 1);
  std::vector<std::string> names = {"", ""};
  for (size_t k = 0; k < parts.size(); ++k) {
    Point f = filter;
    if (pair) {
      for (const auto& [key, v] : k == 0 ? c.a : c.b) f[key] = v;
      names[k] = std::string(" ") + (k == 0 ? "a" : "b");
    }
    const std::string stop = collect_crossing(spec, c, obs, f, names[k], r, d, seeds, parts[k], partial);
    if (!stop.empty()) { r.note = stop; return r; }
  }
  d.seeds.assign(seeds.begin(), seeds.end());
  const double level = c.level;
  bootstrap(d, [&](const std::vector<double>& m) {
    const Bounds sa = crossing_slope(parts[0], m, level);
    if (!pair) return sa;
    const Bounds sb = crossing_slope(parts[1], m, level);
    return Bounds{sa.lo - sb.hi, sa.hi - sb.lo};
  }, r, seed, "a seed mean of " + c.y + " is not positive: the crossing is interpolated in log-log");
  if (!std::isfinite(r.measured)) {
    std::string why;
    for (size_t k = 0; k < parts.size(); ++k) {
      const std::string w = not_crossing(parts[k], d, c, names[k]);
      if (!w.empty()) why += (why.empty() ? "" : "; ") + w;
    }
    if (!r.evaluated) {
      if (!why.empty()) r.note = why;  // (else bootstrap's note says why the statistic is undefined)
      return r;
    }
    add_note(r, why);  // only bounded: the interval of bounds decides, or not
  }
  decide(r, c.lo, c.hi);
  if (r.evaluated && r.resamples_beyond_grid > 0)
    add_note(r, std::to_string(r.resamples_beyond_grid) + " of " + std::to_string(r.resamples) + " bootstrap resamples reach " +
                    fmt_num(level) + " outside the " + c.across + " grid at some " + c.x +
                    ": counted as beyond it (their slope is only bounded, and the interval covers the bound)");
  if (r.evaluated && !partial.empty()) add_note(r, "missing seeds: " + partial);
  return r;
}

}  // namespace attnlab::claims_detail
