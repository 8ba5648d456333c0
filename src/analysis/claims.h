#pragma once
// Claim checks over the runs of a sweep. Each measured value carries a 95% bootstrap
// confidence interval over seeds (the seeds at each x are resampled with replacement), and a
// claim holds only if its whole interval satisfies the expectation.
//   slope:    least-squares slope of log(mean y) on log x;            expect = [lo, hi]
//   flat:     the same slope;                                           |slope| <= expect
//   monotone: largest relative step (decreasing) / smallest (increasing) of mean y along x
//   compare:  mean over paired runs (same other coordinates and seed) of (y_b - y_a) / y_b; >= expect
//   plateau:  largest gain per doubling of x beyond `after`, 1 - (y2/y1)^(1/log2(x2/x1)); <= expect
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sweep/spec.h"

namespace attnlab {

struct Observation {
  Point point;
  int64_t seed = 0;
  nlohmann::json summary;  // the run's summary.json
};

struct ClaimResult {
  std::string result, experiment, claim, kind, expected, series;
  double measured = NAN, ci_low = NAN, ci_high = NAN;
  bool holds = false;
  std::string note;  // why it could not be evaluated, if so
};

std::vector<ClaimResult> evaluate_claims(const ExperimentSpec& spec, const std::vector<Observation>& obs);

// Helpers shared with the figures: the numeric value of a point's TOML text (NaN if none),
// and a run's y (a summary field, NaN if absent or null).
double point_number(const std::string& toml_text);
double summary_value(const nlohmann::json& summary, const std::string& key);
bool point_matches(const Point& p, const Point& filter);

}  // namespace attnlab
