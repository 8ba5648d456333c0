#include "analysis/claims.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <type_traits>

#include "analysis/verdict.h"
#include "core/rng.h"

namespace attnlab {

double point_number(const std::string& t) {
  if (t.empty()) return NAN;
  char* end = nullptr;
  const double v = std::strtod(t.c_str(), &end);
  return end && *end == 0 ? v : NAN;
}

double summary_value(const nlohmann::json& s, const std::string& key) {
  if (!s.is_object() || !s.contains(key) || !s[key].is_number()) return NAN;
  return s[key].get<double>();
}

bool point_matches(const Point& p, const Point& filter) {
  for (const auto& [k, v] : filter) {
    auto it = p.find(k);
    if (it == p.end() || it->second != v) return false;
  }
  return true;
}

void count_run(PointCount& pc, const Observation& o, double y) {
  ++pc.runs;
  pc.members.push_back(&o);
  if (o.status == "completed") {
    ++pc.completed;
    if (!std::isfinite(y)) ++pc.no_value;
  } else if (o.status == "diverged") {
    ++pc.diverged;
  } else if (o.status == "failed") {
    ++pc.failed;
  } else {
    ++pc.unfinished;
  }
}

namespace {

constexpr int kBoot = 2000;

std::string point_text(const Point& p) {
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
std::string missing_runs(const std::vector<const Observation*>& runs, const std::string& y) {
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

double slope_of(const std::vector<double>& x, const std::vector<double>& m) {
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

ClaimResult evaluate_compare(const ExperimentSpec& spec, ClaimResult r, const ClaimSpec& c, const std::vector<Observation>& obs,
                             const Point& filter, uint64_t seed) {
  std::string a, b;
  for (const auto& [k, v] : c.a) a += (a.empty() ? "" : ", ") + k + " = " + v;
  for (const auto& [k, v] : c.b) b += (b.empty() ? "" : ", ") + k + " = " + v;
  const bool ratio = c.kind == "ratio";
  r.expected = ratio ? "mean " + c.y + " at " + b + " / at " + a + " in [" + fmt_num(c.lo) + ", " + fmt_num(c.hi) + "]"
                     : a + " lower " + c.y + " than " + b + " by >= " + fmt_num(c.value);
  Point fa = filter, fb = filter;
  for (const auto& [k, v] : c.a) fa[k] = v;
  for (const auto& [k, v] : c.b) fb[k] = v;
  // Paired: each run of a with the run of b at the same other coordinates and seed; the
  // statistic is the mean relative improvement (y_b - y_a) / y_b over the pairs.
  // The keys a and b set, and the keys zipped with them (they move together), are not
  // "other coordinates".
  std::set<std::string> sides;
  for (const Point* p : {&c.a, &c.b})
    for (const auto& [k, v] : *p) {
      sides.insert(k);
      for (const auto& ax : spec.axes)
        if (std::find(ax.keys.begin(), ax.keys.end(), k) != ax.keys.end()) sides.insert(ax.keys.begin(), ax.keys.end());
    }
  auto strip = [&](Point p) {
    for (const auto& k : sides) p.erase(k);
    return p;
  };
  // side (0 = a, 1 = b) and other coordinates -> runs
  std::map<std::pair<int, Point>, std::vector<const Observation*>> groups;
  for (const auto& o : obs) {
    if (point_matches(o.point, fa)) groups[{0, strip(o.point)}].push_back(&o);
    else if (point_matches(o.point, fb)) groups[{1, strip(o.point)}].push_back(&o);
  }
  std::string empty, partial;
  for (const auto& [key, runs] : groups) {
    PointCount pc;
    const std::string coords = point_text(key.second);
    pc.label = std::string(key.first == 0 ? "a" : "b") + (coords.empty() ? "" : " at " + coords);
    for (const auto* o : runs) count_run(pc, *o, summary_value(o->summary, c.y));
    const int with_value = pc.completed - pc.no_value;
    if (with_value == 0) empty += (empty.empty() ? "" : "; ") + pc.label + ": " + missing_runs(runs, c.y);
    else if (with_value < pc.runs) partial += (partial.empty() ? "" : "; ") + pc.label + ": " + missing_runs(runs, c.y);
    r.points.push_back(pc);
  }
  if (!empty.empty()) { r.note = "no completed run with " + c.y + " at " + empty; return r; }
  BySeed d;
  d.y.assign(ratio ? 2 : 1, {});
  std::set<int64_t> seeds;
  for (const auto& [key, runs_a] : groups) {
    if (key.first != 0) continue;
    auto ib = groups.find({1, key.second});
    if (ib == groups.end()) continue;
    for (const auto* oa : runs_a) {
      const double ya = oa->status == "completed" ? summary_value(oa->summary, c.y) : NAN;
      for (const auto* ob : ib->second) {
        if (ob->seed != oa->seed) continue;
        const double yb = ob->status == "completed" ? summary_value(ob->summary, c.y) : NAN;
        if (std::isfinite(ya) && std::isfinite(yb) && yb != 0) {
          if (ratio) {
            d.y[0][oa->seed].push_back(ya);
            d.y[1][oa->seed].push_back(yb);
          } else {
            d.y[0][oa->seed].push_back((yb - ya) / yb);
          }
          seeds.insert(oa->seed);
        }
      }
    }
  }
  if (seeds.empty()) { r.note = "no pair of completed runs of a and b at the same point and seed"; return r; }
  d.seeds.assign(seeds.begin(), seeds.end());
  if (ratio) {
    bootstrap(d, [](const std::vector<double>& m) { return m[1] / m[0]; }, r, seed, "the mean " + c.y + " at a is 0");
    decide(r, c.lo, c.hi);
  } else {
    bootstrap(d, [](const std::vector<double>& m) { return m[0]; }, r, seed, "no finite relative difference");
    decide(r, c.value, INFINITY);
  }
  if (r.evaluated && !partial.empty()) add_note(r, "missing seeds: " + partial);
  return r;
}

// level: the mean of y over the selected runs (one configuration: they may differ only in
// the seed) lies in [lo, hi].
ClaimResult evaluate_level(ClaimResult r, const ClaimSpec& c, const std::vector<Observation>& obs, const Point& filter,
                           uint64_t seed) {
  r.expected = "mean " + c.y + " in [" + fmt_num(c.lo) + ", " + fmt_num(c.hi) + "]";
  std::vector<const Observation*> sel;
  for (const auto& o : obs)
    if (point_matches(o.point, filter)) sel.push_back(&o);
  if (sel.empty()) { r.note = "no run matches the claim"; return r; }
  for (const auto* o : sel)
    if (o->point != sel[0]->point) {
      r.note = "the selected runs are not one configuration (" + point_text(sel[0]->point) + " and " + point_text(o->point) +
               "): pin the other axes with where = { ... }";
      return r;
    }
  PointCount pc;
  pc.label = point_text(sel[0]->point);
  BySeed d;
  d.y.assign(1, {});
  std::set<int64_t> seeds;
  for (const auto* o : sel) {
    const double y = o->status == "completed" ? summary_value(o->summary, c.y) : NAN;
    count_run(pc, *o, y);
    if (std::isfinite(y)) { d.y[0][o->seed].push_back(y); seeds.insert(o->seed); }
  }
  r.points.push_back(pc);
  if (seeds.empty()) { r.note = "no completed run with " + c.y + ": " + missing_runs(sel, c.y); return r; }
  d.seeds.assign(seeds.begin(), seeds.end());
  bootstrap(d, [](const std::vector<double>& m) { return m[0]; }, r, seed, "no finite mean");
  decide(r, c.lo, c.hi);
  if (r.evaluated && pc.completed - pc.no_value < pc.runs) add_note(r, "missing seeds: " + missing_runs(sel, c.y));
  return r;
}

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

// One selection of a crossing claim: its values of x, and where its groups (x-major, one per
// value of `across`) start in the bootstrap's data.
struct CrossingPart {
  std::vector<double> xs, as;
  size_t first = 0;
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
  std::set<double> across_values;
  std::map<std::pair<double, double>, std::string> labels;
  for (const auto* o : sel) {
    auto ix = o->point.find(c.x), ia = o->point.find(c.across);
    const double x = ix == o->point.end() ? NAN : point_number(ix->second);
    const double a = ia == o->point.end() ? NAN : point_number(ia->second);
    if (!std::isfinite(x)) return c.x + " is not a numeric axis of these runs";
    if (!std::isfinite(a)) return c.across + " is not a numeric axis of these runs";
    grid[x][a].push_back(o);
    across_values.insert(a);
    labels[{x, a}] = name.empty() ? c.x + " = " + ix->second + ", " + c.across + " = " + ia->second
                                  : name.substr(1) + ": " + c.x + " = " + ix->second + ", " + c.across + " = " + ia->second;
  }
  if (grid.size() < 2) return "fewer than two values of " + c.x + " in the selected runs" + name;
  part.as.assign(across_values.begin(), across_values.end());
  part.first = d.y.size();
  std::string empty;
  for (const auto& [x, row] : grid) {
    part.xs.push_back(x);
    for (double a : part.as) {
      PointCount pc;
      pc.label = labels.count({x, a}) ? labels[{x, a}] : c.x + " = " + fmt_num(x) + ", " + c.across + " = " + fmt_num(a);
      std::map<int64_t, std::vector<double>> ys;
      auto it = row.find(a);
      const std::vector<const Observation*> runs = it == row.end() ? std::vector<const Observation*>{} : it->second;
      for (const auto* o : runs) {
        const double y = o->status == "completed" ? summary_value(o->summary, c.y) : NAN;
        count_run(pc, *o, y);
        if (std::isfinite(y)) { ys[o->seed].push_back(y); seeds.insert(o->seed); }
      }
      if (ys.empty()) empty += (empty.empty() ? "" : "; ") + pc.label + (runs.empty() ? ": no run" : ": " + missing_runs(runs, c.y));
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
  for (size_t i = 0; i < p.xs.size(); ++i) need[i] = crossing_of(p.as, m.data() + p.first + i * p.as.size(), level);
  return slope_bounds(p.xs, need);
}

// Where the seed means of a selection do not cross the level inside the grid, for the note.
std::string not_crossing(const CrossingPart& p, const BySeed& d, const ClaimSpec& c, const std::string& name) {
  std::string where_not;
  const size_t A = p.as.size();
  for (size_t i = 0; i < p.xs.size(); ++i) {
    std::vector<double> m(A);
    for (size_t j = 0; j < A; ++j) {
      double sum = 0;
      size_t n = 0;
      for (const auto& [s, v] : d.y[p.first + i * A + j])
        for (double y : v) { sum += y; ++n; }
      m[j] = sum / double(n);
    }
    if (const Bounds b = crossing_of(p.as, m.data(), c.level); b.lo != b.hi)
      where_not += (where_not.empty() ? "" : ", ") + fmt_num(p.xs[i]) + (m[0] <= c.level ? " (already at the smallest " + c.across + ")" : " (never)");
  }
  return where_not.empty() ? "" : "the mean " + c.y + name + " does not cross " + fmt_num(c.level) + " inside the " + c.across + " grid at " + c.x + " = " + where_not;
}

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

ClaimResult evaluate_kind(const ExperimentSpec& spec, const ClaimSpec& c, const std::vector<Observation>& obs,
                          const Point& filter, const std::string& series_label, uint64_t seed);

ClaimResult evaluate_one(const ExperimentSpec& spec, const ClaimSpec& c, const std::vector<Observation>& obs,
                         const Point& filter, const std::string& series_label, uint64_t seed) {
  ClaimResult r = evaluate_kind(spec, c, obs, filter, series_label, seed);
  check_requirements(r, c);
  r.finding = c.finding;
  return r;
}

ClaimResult evaluate_kind(const ExperimentSpec& spec, const ClaimSpec& c, const std::vector<Observation>& obs,
                          const Point& filter, const std::string& series_label, uint64_t seed) {
  ClaimResult r;
  r.result = spec.result;
  r.experiment = spec.name;
  r.kind = c.kind;
  r.x = c.x;
  r.y = c.y;
  r.series = series_label;
  const std::string where = point_text(filter);
  r.claim = !c.text.empty() ? c.text : c.kind + " of " + c.y + (c.x.empty() ? "" : " against " + c.x) + (where.empty() ? "" : " (" + where + ")");
  if (c.kind == "compare" || c.kind == "ratio") return evaluate_compare(spec, r, c, obs, filter, seed);
  if (c.kind == "level") return evaluate_level(r, c, obs, filter, seed);
  if (c.kind == "crossing") return evaluate_crossing(spec, r, c, obs, filter, seed);

  if (c.kind == "slope") r.expected = "slope in [" + fmt_num(c.lo) + ", " + fmt_num(c.hi) + "]";
  else if (c.kind == "flat") r.expected = "|slope| <= " + fmt_num(c.value);
  else if (c.kind == "monotone") r.expected = c.direction + " along " + c.x + " (every step, relative)";
  else if (c.kind == "plateau") r.expected = "gain per doubling of " + c.x + " <= " + fmt_num(c.value) + " beyond " + fmt_num(c.after);
  else if (c.kind == "optimum") r.expected = "arg-min over " + c.x + " in [" + fmt_num(c.lo) + ", " + fmt_num(c.hi) + "]";

  std::vector<const Observation*> sel;
  for (const auto& o : obs)
    if (point_matches(o.point, filter)) sel.push_back(&o);
  if (sel.empty()) { r.note = "no run matches " + (where.empty() ? std::string("the claim") : where); return r; }
  // Runs that differ on another axis are not seeds of one configuration: refuse to pool them.
  // Keys zipped with x move with it, and are no other axis.
  std::set<std::string> with_x = {c.x};
  for (const auto& ax : spec.axes)
    if (std::find(ax.keys.begin(), ax.keys.end(), c.x) != ax.keys.end()) with_x.insert(ax.keys.begin(), ax.keys.end());
  std::map<std::string, std::set<std::string>> values;
  for (const auto* o : sel)
    for (const auto& [k, v] : o->point)
      if (!with_x.count(k)) values[k].insert(v);
  for (const auto& [k, vs] : values) {
    if (vs.size() < 2) continue;
    std::string list;
    for (const auto& v : vs) list += (list.empty() ? "" : ", ") + v;
    r.note = "the selected runs differ in " + k + " (" + list + "): pin it with series = \"" + k + "\" or where = { \"" + k +
             "\" = ... }";
    return r;
  }
  std::map<double, std::pair<std::string, std::vector<const Observation*>>> by_x;
  for (const auto* o : sel) {
    auto it = o->point.find(c.x);
    const double x = it == o->point.end() ? NAN : point_number(it->second);
    if (!std::isfinite(x)) { r.note = c.x + " is not a numeric axis of these runs"; return r; }
    by_x[x].first = it->second;
    by_x[x].second.push_back(o);
  }
  std::vector<double> xs;
  BySeed d;
  std::set<int64_t> seeds;
  std::string empty, partial;
  for (const auto& [x, entry] : by_x) {
    PointCount pc;
    pc.label = c.x + " = " + entry.first;
    std::map<int64_t, std::vector<double>> ys;
    for (const auto* o : entry.second) {
      const double y = o->status == "completed" ? summary_value(o->summary, c.y) : NAN;
      count_run(pc, *o, y);
      if (std::isfinite(y)) { ys[o->seed].push_back(y); seeds.insert(o->seed); }
    }
    if (ys.empty()) empty += (empty.empty() ? "" : "; ") + pc.label + ": " + missing_runs(entry.second, c.y);
    else if (pc.completed - pc.no_value < pc.runs) partial += (partial.empty() ? "" : "; ") + pc.label + ": " + missing_runs(entry.second, c.y);
    r.points.push_back(pc);
    xs.push_back(x);
    d.y.push_back(std::move(ys));
  }
  if (!empty.empty()) { r.note = "no completed run with " + c.y + " at " + empty; return r; }
  if (xs.size() < 2) { r.note = "fewer than two values of " + c.x + " in the selected runs"; return r; }
  d.seeds.assign(seeds.begin(), seeds.end());
  if (c.kind == "slope" || c.kind == "flat") {
    bootstrap(d, [&xs](const std::vector<double>& m) { return slope_of(xs, m); }, r, seed,
              "a seed mean of " + c.y + " is not positive: a log-log fit needs positive values");
    if (r.evaluated) {  // the constant of the fit through the seed means: mean log y - slope mean log x
      double lx = 0, ly = 0;
      for (size_t g = 0; g < xs.size(); ++g) {
        double sum = 0;
        size_t n = 0;
        for (const auto& [sd, v] : d.y[g])
          for (double y : v) { sum += y; ++n; }
        lx += std::log(xs[g]) / double(xs.size());
        ly += std::log(sum / double(n)) / double(xs.size());
      }
      r.fit_exponent = r.measured;
      r.fit_c = std::exp(ly - r.measured * lx);
    }
    if (c.kind == "slope") decide(r, c.lo, c.hi);
    else decide(r, -c.value, c.value);
  } else if (c.kind == "monotone") {
    const bool dec = c.direction == "decreasing" || c.direction == "nonincreasing";
    bootstrap(d, [dec](const std::vector<double>& m) {
      double ext = dec ? -INFINITY : INFINITY;
      for (size_t i = 0; i + 1 < m.size(); ++i) {
        const double step = (m[i + 1] - m[i]) / std::fabs(m[i]);
        ext = dec ? std::max(ext, step) : std::min(ext, step);
      }
      return ext;
    }, r, seed, "a mean of " + c.y + " is 0: the relative steps are undefined");
    decide(r, dec ? -INFINITY : 0.0, dec ? 0.0 : INFINITY, c.direction.rfind("non", 0) != 0);  // non*: a step of 0 is inside
  } else if (c.kind == "plateau") {
    const double after = c.after;
    bootstrap(d, [&xs, after](const std::vector<double>& m) {
      double worst = -INFINITY;
      for (size_t i = 0; i + 1 < m.size(); ++i) {
        if (xs[i] < after || !(m[i] > 0) || !(m[i + 1] > 0)) continue;
        worst = std::max(worst, 1.0 - std::pow(m[i + 1] / m[i], 1.0 / std::log2(xs[i + 1] / xs[i])));
      }
      return std::isfinite(worst) ? worst : NAN;
    }, r, seed, "no two successive positive means of " + c.y + " at " + c.x + " >= " + fmt_num(c.after));
    decide(r, -INFINITY, c.value);
  } else if (c.kind == "optimum") {  // the x of the lowest mean y (the first, on a tie)
    bootstrap(d, [&xs](const std::vector<double>& m) {
      size_t best = 0;
      for (size_t i = 1; i < m.size(); ++i)
        if (m[i] < m[best]) best = i;
      return xs[best];
    }, r, seed, "no finite mean");
    decide(r, c.lo, c.hi);
  }
  if (r.evaluated && !partial.empty()) add_note(r, "missing seeds: " + partial);
  return r;
}

}  // namespace

std::vector<ClaimResult> evaluate_claims(const ExperimentSpec& spec, const std::vector<Observation>& obs) {
  std::vector<ClaimResult> out;
  for (size_t i = 0; i < spec.claims.size(); ++i) {
    const ClaimSpec& c = spec.claims[i];
    const uint64_t seed = stream_id(spec.name) + i;
    if (c.series.empty()) {
      out.push_back(evaluate_one(spec, c, obs, c.where, "", seed));
      continue;
    }
    std::vector<std::string> values;
    for (const auto& o : obs) {
      if (!point_matches(o.point, c.where)) continue;
      auto it = o.point.find(c.series);
      if (it != o.point.end() && std::find(values.begin(), values.end(), it->second) == values.end()) values.push_back(it->second);
    }
    std::sort(values.begin(), values.end());
    if (values.empty()) {
      ClaimResult r = evaluate_one(spec, c, {}, c.where, c.series, seed);
      r.note = "no run has the series axis " + c.series;
      out.push_back(r);
    }
    for (const auto& v : values) {
      Point f = c.where;
      f[c.series] = v;
      out.push_back(evaluate_one(spec, c, obs, f, c.series + " = " + v, seed));
    }
  }
  return out;
}

}  // namespace attnlab
