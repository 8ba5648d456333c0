#pragma once
// Figures of a sweep: the mean over seeds of a summary field against an axis, one line per
// series, error bars from the smallest to the largest seed; CSV next to each SVG with, per
// point, how many seeds completed, diverged, failed or have not run. Rendered by gnuplot
// (SVG terminal), started without a shell, with every string from a spec or a store passed
// as a single-quoted gnuplot string (no command substitution there) stripped of control
// characters.
#include <string>
#include <utility>
#include <vector>

#include "analysis/claims.h"
#include "sweep/spec.h"

namespace attnlab {

// A figure's guide: the power law c x^slope with c fitted to a series' means (least squares of
// log y with the slope fixed), beside the free log-log fit of the same points.
struct GuideFit {
  bool ok = false;  // at least two points with positive x and y, two distinct x
  double guide_c = 0, fit_slope = 0, fit_c = 0;
};
GuideFit fit_guide(const std::vector<std::pair<double, double>>& pts, double slope);

struct FigureFiles {
  std::string svg, csv;  // file names inside the output directory
  bool ok = false;
  std::string error;
  std::vector<std::string> incomplete;  // "series, x = 128: 1 of 3 seeds (2 diverged)", per point not all completed
  std::vector<GuideFit> guides;      // per series with a guide drawn
  std::vector<std::string> fits;     // per series: "fitted y = c x^b; guide <label> = c0 x^s" (or why none)
  std::string pooled;  // axes (other than x, its zip partners and the series) the means run over, with their values
};

// Writes DIR/<stem>.csv and DIR/<stem>.svg. `axes` (the spec's) tell which keys move with x.
FigureFiles render_figure(const FigureSpec& f, const std::vector<Axis>& axes, const std::vector<Observation>& obs,
                          const std::string& dir, const std::string& stem);

// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180); a text
// that a spreadsheet would take for a formula (=, +, -, @ and not a number) gets a leading '.
std::string csv_field(const std::string& s);
// A gnuplot single-quoted string literal: quotes doubled, control characters as spaces.
std::string gp_quote(const std::string& s);

}  // namespace attnlab
