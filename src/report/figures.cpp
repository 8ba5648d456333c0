#include "report/figures.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "io/atomic_file.h"

namespace attnlab {

namespace {

std::string unquote(const std::string& s) {
  return s.size() >= 2 && s.front() == '"' && s.back() == '"' ? s.substr(1, s.size() - 2) : s;
}

std::string gp_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o;
}

struct Cell {
  std::vector<double> ys;
};

}  // namespace

FigureFiles render_figure(const FigureSpec& f, const std::vector<Observation>& obs, const std::string& dir,
                          const std::string& stem) {
  FigureFiles files;
  files.svg = stem + ".svg";
  files.csv = stem + ".csv";
  // series -> x text -> values
  std::map<std::string, std::map<std::string, Cell>> data;
  bool numeric = true;
  for (const auto& o : obs) {
    auto xi = o.point.find(f.x);
    if (xi == o.point.end()) continue;
    const double y = summary_value(o.summary, f.y);
    if (!std::isfinite(y)) continue;
    std::string series = "all";
    if (!f.series.empty()) {
      auto si = o.point.find(f.series);
      series = si == o.point.end() ? "(none)" : unquote(si->second);
    }
    data[series][xi->second].ys.push_back(y);
    if (!std::isfinite(point_number(xi->second))) numeric = false;
  }
  std::ostringstream csv;
  csv << "series," << f.x << ",mean," << f.y << "_min," << f.y << "_max,n\n";
  std::vector<std::string> cats;  // categorical x: order of first appearance
  for (auto& [series, xs] : data)
    for (auto& [x, cell] : xs)
      if (std::find(cats.begin(), cats.end(), x) == cats.end()) cats.push_back(x);
  std::ostringstream plot, inline_data;
  int n_series = 0;
  for (auto& [series, xs] : data) {
    // numeric x sorted by value
    std::vector<std::pair<double, std::string>> order;
    for (auto& [x, cell] : xs) order.push_back({numeric ? point_number(x) : double(std::find(cats.begin(), cats.end(), x) - cats.begin()), x});
    std::sort(order.begin(), order.end());
    plot << (n_series++ ? ", " : "") << "'-' using 1:2:3:4" << (numeric ? "" : ":xtic(5)") << " with yerrorlines lw 2 pt 7 ps 0.8 title \""
         << gp_escape(series) << "\"";
    for (auto& [xv, x] : order) {
      const auto& ys = xs[x].ys;
      double sum = 0, lo = INFINITY, hi = -INFINITY;
      for (double y : ys) { sum += y; lo = std::min(lo, y); hi = std::max(hi, y); }
      const double m = sum / double(ys.size());
      csv << '"' << series << "\"," << unquote(x) << ',' << m << ',' << lo << ',' << hi << ',' << ys.size() << "\n";
      inline_data << xv << ' ' << m << ' ' << lo << ' ' << hi;
      if (!numeric) inline_data << " \"" << gp_escape(unquote(x)) << '"';
      inline_data << "\n";
    }
    inline_data << "e\n";
  }
  const std::filesystem::path d(dir);
  write_file_atomic((d / files.csv).string(), csv.str());
  if (n_series == 0) {
    files.error = "no finished run has both " + f.x + " and " + f.y;
    return files;
  }
  std::ostringstream gp;
  gp << "set terminal svg size 640,420 dynamic font 'Helvetica,12' background rgb 'white'\n"
     << "set output '" << (d / files.svg).string() << "'\n"
     << "set title \"" << gp_escape(f.title) << "\" noenhanced\n"
     << "set xlabel \"" << gp_escape(f.x) << "\" noenhanced\n"
     << "set ylabel \"" << gp_escape(f.y) << " (mean; bars: min to max over seeds)\" noenhanced\n"
     << "set key outside right top noenhanced\nset grid\nset offsets graph 0.03, graph 0.03, 0, 0\n";
  if (f.logx && numeric) gp << "set logscale x 2\n";
  if (f.logy) gp << "set logscale y\nset format y '%.0e'\n";
  gp << "plot " << plot.str() << "\n" << inline_data.str();
  const std::string script = (d / (stem + ".gp")).string();
  write_file_atomic(script, gp.str());
  const std::string cmd = "gnuplot '" + script + "' 2> '" + (d / (stem + ".gp.log")).string() + "'";
  const int rc = std::system(cmd.c_str());
  files.ok = rc == 0 && std::filesystem::exists(d / files.svg);
  if (!files.ok) files.error = "gnuplot failed (see " + stem + ".gp.log)";
  else std::filesystem::remove(d / (stem + ".gp.log"));
  return files;
}

}  // namespace attnlab
