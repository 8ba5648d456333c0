#include "report/figures.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "core/process.h"
#include "io/atomic_file.h"

namespace attnlab {

std::string csv_field(const std::string& text) {
  std::string s = text;
  if (!s.empty() && std::string("=+-@").find(s[0]) != std::string::npos) {
    char* end = nullptr;
    (void)std::strtod(s.c_str(), &end);
    if (!(end && *end == 0)) s = "'" + s;
  }
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) {
    if (c == '"') o += '"';
    o += c;
  }
  return o + "\"";
}

std::string gp_quote(const std::string& s) {
  // Inside single quotes gnuplot does no backslash escapes, no `command` substitution and no
  // @macro expansion; a line break would end the command, so none gets through.
  std::string o = "'";
  for (char c : s) {
    if (c == '\'') o += "''";
    else if (uint8_t(c) < 0x20 || c == 0x7f) o += ' ';
    else o += c;
  }
  return o + "'";
}

namespace {

std::string unquote(const std::string& s) {
  return s.size() >= 2 && s.front() == '"' && s.back() == '"' ? s.substr(1, s.size() - 2) : s;
}

std::string num(double v) {
  std::ostringstream ss;
  ss.precision(10);
  ss << v;
  return ss.str();
}

struct Cell {
  std::vector<double> ys;  // completed seeds with a finite y
  PointCount n;            // every run at the point, by outcome
};

std::string fmt_g(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}

}  // namespace

GuideFit fit_guide(const std::vector<std::pair<double, double>>& pts, double slope) {
  GuideFit g;
  std::vector<std::pair<double, double>> lp;
  for (const auto& [x, y] : pts)
    if (x > 0 && y > 0 && std::isfinite(x) && std::isfinite(y)) lp.push_back({std::log(x), std::log(y)});
  double mx = 0, my = 0;
  for (const auto& [lx, ly] : lp) { mx += lx; my += ly; }
  if (lp.size() < 2) return g;
  mx /= double(lp.size());
  my /= double(lp.size());
  double sxx = 0, sxy = 0;
  for (const auto& [lx, ly] : lp) { sxx += (lx - mx) * (lx - mx); sxy += (lx - mx) * (ly - my); }
  if (sxx <= 0) return g;  // one distinct x
  g.ok = true;
  g.fit_slope = sxy / sxx;
  g.fit_c = std::exp(my - g.fit_slope * mx);
  g.guide_c = std::exp(my - slope * mx);  // least squares in log y with the slope fixed
  return g;
}

FigureFiles render_figure(const FigureSpec& f, const std::vector<Axis>& axes, const std::vector<Observation>& obs,
                          const std::string& dir, const std::string& stem) {
  FigureFiles files;
  {  // Axes the plotted means run over besides the seeds: said in the caption.
    std::set<std::string> with_x = {f.x, f.series};
    for (const auto& ax : axes)
      if (std::find(ax.keys.begin(), ax.keys.end(), f.x) != ax.keys.end()) with_x.insert(ax.keys.begin(), ax.keys.end());
    std::map<std::string, std::set<std::string>> values;
    for (const auto& o : obs)
      if (point_matches(o.point, f.where))
        for (const auto& [k, v] : o.point)
          if (!with_x.count(k)) values[k].insert(v);
    for (const auto& [k, vs] : values) {
      if (vs.size() < 2) continue;
      std::string list;
      for (const auto& v : vs) list += (list.empty() ? "" : ", ") + v;
      files.pooled += (files.pooled.empty() ? "" : "; ") + k + " (" + list + ")";
    }
  }
  files.svg = stem + ".svg";
  files.csv = stem + ".csv";
  // series -> x text -> runs
  std::map<std::string, std::map<std::string, Cell>> data;
  bool numeric = true;
  for (const auto& o : obs) {
    if (!point_matches(o.point, f.where)) continue;
    auto xi = o.point.find(f.x);
    if (xi == o.point.end()) continue;
    std::string series = "all";
    if (!f.series.empty()) {
      auto si = o.point.find(f.series);
      series = si == o.point.end() ? "(none)" : unquote(si->second);
    }
    Cell& cell = data[series][xi->second];
    const double y = o.status == "completed" ? summary_value(o.summary, f.y) : NAN;
    count_run(cell.n, o, y);
    if (std::isfinite(y)) cell.ys.push_back(y);
    if (!std::isfinite(point_number(xi->second))) numeric = false;
  }
  std::ostringstream csv;
  csv << "series," << csv_field(f.x) << ",mean," << csv_field(f.y + "_min") << "," << csv_field(f.y + "_max")
      << ",n,runs,diverged,failed,not_run,no_value\n";
  // Series in numeric order when every name is a number (m = 4, 16, 64, 256), else by name.
  std::vector<std::string> names;
  bool numeric_series = true;
  for (auto& [series, xs] : data) {
    names.push_back(series);
    numeric_series = numeric_series && std::isfinite(point_number(series));
  }
  if (numeric_series)
    std::stable_sort(names.begin(), names.end(),
                     [](const std::string& a, const std::string& b) { return point_number(a) < point_number(b); });
  std::vector<std::string> cats;  // categorical x: order of first appearance
  for (const auto& series : names)
    for (auto& [x, cell] : data[series])
      if (std::find(cats.begin(), cats.end(), x) == cats.end()) cats.push_back(x);
  std::ostringstream plot, inline_data, labels;
  int n_series = 0;
  // Per plotted series, its (x, mean) points with both positive: what a guide is fitted to.
  std::vector<std::pair<std::string, std::vector<std::pair<double, double>>>> logpts;
  for (const auto& series : names) {
    auto& xs = data[series];
    // numeric x sorted by value
    std::vector<std::pair<double, std::string>> order;
    for (auto& [x, cell] : xs) order.push_back({numeric ? point_number(x) : double(std::find(cats.begin(), cats.end(), x) - cats.begin()), x});
    std::sort(order.begin(), order.end());
    int plotted = 0;
    for (auto& [xv, x] : order) {
      const auto& ys = xs[x].ys;
      const PointCount& c = xs[x].n;
      double sum = 0, lo = INFINITY, hi = -INFINITY;
      for (double y : ys) { sum += y; lo = std::min(lo, y); hi = std::max(hi, y); }
      const double m = ys.empty() ? NAN : sum / double(ys.size());
      csv << csv_field(series) << ',' << csv_field(unquote(x)) << ',' << (ys.empty() ? "" : num(m)) << ','
          << (ys.empty() ? "" : num(lo)) << ',' << (ys.empty() ? "" : num(hi)) << ',' << ys.size() << ',' << c.runs << ','
          << c.diverged << ',' << c.failed << ',' << c.unfinished << ',' << c.no_value << "\n";
      if (int(ys.size()) < c.runs) {
        std::string why;
        auto add = [&](int n, const char* what) { if (n) why += (why.empty() ? "" : ", ") + std::to_string(n) + " " + what; };
        add(c.diverged, "diverged");
        add(c.failed, "failed");
        add(c.unfinished, "not run");
        add(c.no_value, std::string("completed without " + f.y).c_str());
        files.incomplete.push_back((f.series.empty() ? "" : series + ", ") + f.x + " = " + unquote(x) + ": " +
                                   std::to_string(ys.size()) + " of " + std::to_string(c.runs) + " seeds (" + why + ")");
        if (!ys.empty())  // marked on the plot: the mean is over fewer seeds
          labels << "set label " << gp_quote(std::to_string(ys.size()) + "/" + std::to_string(c.runs)) << " at first " << num(xv)
                 << ", first " << num(m) << " offset 0.6,0.8 textcolor rgb '#cf222e' font ',10'\n";
      }
      if (ys.empty()) continue;
      inline_data << num(xv) << ' ' << num(m) << ' ' << num(lo) << ' ' << num(hi) << "\n";
      if (plotted == 0) logpts.push_back({series, {}});
      if (numeric && xv > 0 && m > 0) logpts.back().second.push_back({xv, m});
      ++plotted;
    }
    if (!plotted) continue;
    ++n_series;  // line type n_series: the guide of this series has its colour
    plot << (n_series > 1 ? ", " : "") << "'-' using 1:2:3:4 with yerrorlines lt " << n_series << " lw 2 pt 7 ps 0.8 title "
         << gp_quote(series);
    inline_data << "e\n";
  }
  if (f.guide && !numeric) files.fits.push_back("guide: not drawn, " + f.x + " is not numeric");
  if (f.guide && numeric)
    for (size_t k = 0; k < logpts.size(); ++k) {
      const auto& [series, pts] = logpts[k];
      const GuideFit g = fit_guide(pts, f.guide_slope);
      if (!g.ok) {
        files.fits.push_back((logpts.size() > 1 ? series + ": " : "") + "guide: fewer than two points with positive x and y");
        continue;
      }
      files.guides.push_back(g);
      plot << ", " << num(g.guide_c) << " * x**(" << num(f.guide_slope) << ") with lines lt " << (k + 1) << " dt 2 lw 1.5 "
           << (k == 0 ? "title " + gp_quote(f.guide_label) : std::string("notitle"));
      files.fits.push_back((logpts.size() > 1 ? series + ": " : "") + "fitted y = " + fmt_g(g.fit_c) + " x^" + fmt_g(g.fit_slope) +
                           "; guide " + f.guide_label + " = " + fmt_g(g.guide_c) + " x^" + fmt_g(f.guide_slope));
    }
  const std::filesystem::path d(dir);
  write_file_atomic((d / files.csv).string(), csv.str());
  if (n_series == 0) {
    files.error = "no completed run has both " + f.x + " and " + f.y;
    return files;
  }
  std::ostringstream gp;
  // The output is a fixed name in gnuplot's working directory (DIR): no path is pasted in.
  gp << "set terminal svg size 640,420 dynamic font 'Helvetica,12' background rgb 'white'\n"
     << "set output " << gp_quote(files.svg) << "\n"
     << "set title " << gp_quote(f.title) << " noenhanced\n"
     << "set xlabel " << gp_quote(f.x) << " noenhanced\n"
     << "set ylabel " << gp_quote(f.y + ": seed mean, min-max bars") << " noenhanced\n"
     << "set grid\nset offsets graph 0.03, graph 0.03, 0, 0\n";
  // The key right of the plot, unless a label is long (a guide's, a long series name): then
  // below it, so that the plot keeps its width.
  size_t longest = f.guide ? f.guide_label.size() : 0;
  for (const auto& n : names) longest = std::max(longest, n.size());
  gp << (longest > 16 ? "set key outside center bottom horizontal noenhanced\n" : "set key outside right top noenhanced\n");
  if (!f.series.empty()) gp << "set key title " << gp_quote(f.series) << " noenhanced\n";  // what the lines are
  if (!numeric) {
    gp << "set xtics (";
    for (size_t i = 0; i < cats.size(); ++i) gp << (i ? ", " : "") << gp_quote(unquote(cats[i])) << " " << i;
    gp << ") noenhanced\n";
  }
  if (f.logx && numeric) gp << "set logscale x 2\n";
  if (f.logy) gp << "set logscale y\nset format y '%.0e'\n";
  gp << labels.str() << "plot " << plot.str() << "\n" << inline_data.str();
  const std::string script = stem + ".gp", log = stem + ".gp.log";
  write_file_atomic((d / script).string(), gp.str());
  ProcessOptions po;
  po.cwd = dir;
  po.stderr_path = (d / log).string();
  const ProcessResult pr = run_process({"gnuplot", script}, po);
  files.ok = pr.status == 0 && std::filesystem::exists(d / files.svg);
  if (!files.ok) files.error = pr.status < 0 ? "gnuplot could not be started (is it installed?)" : "gnuplot failed (see " + log + ")";
  else std::filesystem::remove(d / log);
  return files;
}

}  // namespace attnlab
