#pragma once
// Figures of a sweep: the mean over seeds of a summary field against an axis, one line per
// series, error bars from the smallest to the largest seed; CSV next to each SVG. Rendered by
// gnuplot (SVG terminal).
#include <string>
#include <vector>

#include "analysis/claims.h"
#include "sweep/spec.h"

namespace attnlab {

struct FigureFiles {
  std::string svg, csv;  // file names inside the output directory
  bool ok = false;
  std::string error;
};

// Writes DIR/<stem>.csv and DIR/<stem>.svg.
FigureFiles render_figure(const FigureSpec& f, const std::vector<Observation>& obs, const std::string& dir,
                          const std::string& stem);

}  // namespace attnlab
