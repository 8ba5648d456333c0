#include "analysis/claims.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <type_traits>

#include "analysis/claims_stats.h"

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

using namespace claims_detail;

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
  if (!c.not_at_scale.empty()) {  // n/a: its runs belong to another scale
    r.note = c.not_at_scale;
    return r;
  }
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
