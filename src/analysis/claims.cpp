#include "analysis/claims.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

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

namespace {

constexpr int kBoot = 2000;

struct Series {
  std::vector<double> x;               // sorted distinct x
  std::vector<std::vector<double>> y;  // the seeds' values at each x
};

Series collect(const std::vector<Observation>& obs, const std::string& xkey, const std::string& ykey, const Point& filter) {
  std::map<double, std::vector<double>> m;
  for (const auto& o : obs) {
    if (!point_matches(o.point, filter)) continue;
    auto it = o.point.find(xkey);
    const double x = it == o.point.end() ? NAN : point_number(it->second);
    const double y = summary_value(o.summary, ykey);
    if (std::isfinite(x) && std::isfinite(y)) m[x].push_back(y);
  }
  Series s;
  for (auto& [x, ys] : m) { s.x.push_back(x); s.y.push_back(ys); }
  return s;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? NAN : s / double(v.size());
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

// statistic(x, means) on the data and on kBoot resamples -> measured, 2.5% and 97.5% quantiles.
template <class F>
void bootstrap(const Series& s, F stat, ClaimResult& r, uint64_t seed) {
  std::vector<double> means(s.x.size());
  for (size_t i = 0; i < s.x.size(); ++i) means[i] = mean(s.y[i]);
  r.measured = stat(s.x, means);
  std::vector<double> stats;
  for (int b = 0; b < kBoot; ++b) {
    uint64_t k = 0;
    for (size_t i = 0; i < s.x.size(); ++i) {
      double sum = 0;
      const size_t n = s.y[i].size();
      for (size_t j = 0; j < n; ++j) sum += s.y[i][rng_below(seed, uint64_t(b), k++, n)];
      means[i] = sum / double(n);
    }
    const double v = stat(s.x, means);
    if (std::isfinite(v)) stats.push_back(v);
  }
  if (stats.size() < size_t(kBoot) / 2 || !std::isfinite(r.measured)) {
    r.note = "the statistic is undefined on this data (non-positive values for a log fit?)";
    return;
  }
  std::sort(stats.begin(), stats.end());
  r.ci_low = stats[size_t(0.025 * double(stats.size() - 1))];
  r.ci_high = stats[size_t(0.975 * double(stats.size() - 1))];
}

std::string fmt_num(double v) {
  std::ostringstream ss;
  ss << v;
  return ss.str();
}

ClaimResult evaluate_one(const ExperimentSpec& spec, const ClaimSpec& c, const std::vector<Observation>& obs,
                         const Point& filter, const std::string& series_label, uint64_t seed) {
  ClaimResult r;
  r.result = spec.result;
  r.experiment = spec.name;
  r.kind = c.kind;
  r.series = series_label;
  std::string where;
  for (const auto& [k, v] : filter) where += (where.empty() ? "" : ", ") + k + " = " + v;
  r.claim = !c.text.empty() ? c.text : c.kind + " of " + c.y + (c.x.empty() ? "" : " against " + c.x) + (where.empty() ? "" : " (" + where + ")");
  if (c.kind == "compare") {
    std::string a, b;
    for (const auto& [k, v] : c.a) a += k + " = " + v;
    for (const auto& [k, v] : c.b) b += k + " = " + v;
    r.expected = a + " lower " + c.y + " than " + b + " by >= " + fmt_num(c.value);
    Point fa = filter, fb = filter;
    for (const auto& [k, v] : c.a) fa[k] = v;
    for (const auto& [k, v] : c.b) fb[k] = v;
    // Paired: each run of a with the run of b at the same other coordinates and seed;
    // the statistic is the mean relative improvement (y_b - y_a) / y_b over the pairs.
    auto strip = [&](Point p) {
      for (const auto& [k, v] : c.a) p.erase(k);
      for (const auto& [k, v] : c.b) p.erase(k);
      return p;
    };
    Series s;
    s.x = {0};
    s.y.assign(1, {});
    for (const auto& oa : obs) {
      if (!point_matches(oa.point, fa)) continue;
      const double ya = summary_value(oa.summary, c.y);
      for (const auto& ob : obs) {
        if (ob.seed != oa.seed || !point_matches(ob.point, fb) || strip(ob.point) != strip(oa.point)) continue;
        const double yb = summary_value(ob.summary, c.y);
        if (std::isfinite(ya) && std::isfinite(yb) && yb != 0) s.y[0].push_back((yb - ya) / yb);
      }
    }
    if (s.y[0].empty()) { r.note = "no pair of finished runs of a and b at the same point and seed"; return r; }
    bootstrap(s, [](const std::vector<double>&, const std::vector<double>& m) { return m[0]; }, r, seed);
    r.holds = std::isfinite(r.ci_low) && r.ci_low >= c.value;
    return r;
  }
  const Series s = collect(obs, c.x, c.y, filter);
  if (s.x.size() < 2) { r.note = "fewer than two x values with finished runs"; return r; }
  if (c.kind == "slope" || c.kind == "flat") {
    r.expected = c.kind == "slope" ? "slope in [" + fmt_num(c.lo) + ", " + fmt_num(c.hi) + "]" : "|slope| <= " + fmt_num(c.value);
    bootstrap(s, slope_of, r, seed);
    if (c.kind == "slope") r.holds = std::isfinite(r.ci_low) && r.ci_low >= c.lo && r.ci_high <= c.hi;
    else r.holds = std::isfinite(r.ci_low) && r.ci_low >= -c.value && r.ci_high <= c.value;
  } else if (c.kind == "monotone") {
    const bool dec = c.direction == "decreasing";
    r.expected = c.direction + " along " + c.x + " (every step, relative)";
    bootstrap(s, [dec](const std::vector<double>&, const std::vector<double>& m) {
      double ext = dec ? -INFINITY : INFINITY;
      for (size_t i = 0; i + 1 < m.size(); ++i) {
        const double step = (m[i + 1] - m[i]) / std::fabs(m[i]);
        ext = dec ? std::max(ext, step) : std::min(ext, step);
      }
      return ext;
    }, r, seed);
    r.holds = dec ? (std::isfinite(r.ci_high) && r.ci_high < 0) : (std::isfinite(r.ci_low) && r.ci_low > 0);
  } else if (c.kind == "plateau") {
    r.expected = "gain per doubling of " + c.x + " <= " + fmt_num(c.value) + " beyond " + fmt_num(c.after);
    const double after = c.after;
    bootstrap(s, [after](const std::vector<double>& x, const std::vector<double>& m) {
      double worst = -INFINITY;
      for (size_t i = 0; i + 1 < m.size(); ++i) {
        if (x[i] < after || !(m[i] > 0) || !(m[i + 1] > 0)) continue;
        worst = std::max(worst, 1.0 - std::pow(m[i + 1] / m[i], 1.0 / std::log2(x[i + 1] / x[i])));
      }
      return std::isfinite(worst) ? worst : NAN;
    }, r, seed);
    r.holds = std::isfinite(r.ci_high) && r.ci_high <= c.value;
  }
  return r;
}

}  // namespace

std::vector<ClaimResult> evaluate_claims(const ExperimentSpec& spec, const std::vector<Observation>& obs) {
  std::vector<ClaimResult> out;
  for (size_t i = 0; i < spec.claims.size(); ++i) {
    const ClaimSpec& c = spec.claims[i];
    const uint64_t seed = stream_id(spec.name) + i;
    if (c.series.empty()) {
      out.push_back(evaluate_one(spec, c, obs, c.filter, "", seed));
      continue;
    }
    std::vector<std::string> values;
    for (const auto& o : obs) {
      auto it = o.point.find(c.series);
      if (it != o.point.end() && std::find(values.begin(), values.end(), it->second) == values.end()) values.push_back(it->second);
    }
    std::sort(values.begin(), values.end());
    for (const auto& v : values) {
      Point f = c.filter;
      f[c.series] = v;
      out.push_back(evaluate_one(spec, c, obs, f, c.series + " = " + v, seed));
    }
  }
  return out;
}

}  // namespace attnlab
