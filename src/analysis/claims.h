#pragma once
// Claim checks over the runs of a sweep. The seed is the unit of replication: each measured
// value carries a 95% bootstrap confidence interval from resampling the seeds with
// replacement (a drawn seed brings all its runs: its whole curve along x, or all its pairs),
// and a claim holds only if its whole interval satisfies the expectation.
//   slope:    least-squares slope of log(mean y) on log x;            expect = [lo, hi]
//   flat:     the same slope;                                           |slope| <= expect
//   monotone: largest relative step (decreasing) / smallest (increasing) of mean y along x;
//             strictly below / above 0, or, for nonincreasing / nondecreasing, at or below / above
//   compare:  mean over paired runs (same other coordinates and seed) of (y_b - y_a) / y_b; >= expect
//   ratio:    mean y of b over mean y of a, over the same paired runs;                 expect = [lo, hi]
//   plateau:  largest gain per doubling of x beyond `after`, 1 - (y2/y1)^(1/log2(x2/x1)); <= expect
//   optimum:  the x with the lowest mean y (its bootstrap distribution gives the interval); expect = [lo, hi]
//   level:    the mean of y over the seeds of one configuration (no x);                 expect = [lo, hi]
//   crossing: per x, the value of `across` where mean y reaches `level` (log-log interpolation);
//             the least-squares slope of its log on log x;                              expect = [lo, hi]
// Every run of the selection counts: a point (an x, or one side of a comparison at some
// other coordinates) with no completed seed makes the claim "n/a" with a note naming the
// runs; points with missing seeds are named in the note. A claim over runs that differ on an
// axis other than x, its series and the seed is "n/a" (the axis must be pinned).
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sweep/spec.h"

namespace attnlab {

struct Observation {
  std::string id;  // the run id (names the run in notes)
  Point point;
  int64_t seed = 0;
  std::string status = "completed";  // completed | diverged | failed | pending | running
  nlohmann::json summary;            // the run's summary.json (empty if none)
};

// The runs at one point of a claim's selection, by outcome.
struct PointCount {
  std::string label;  // "model.width = 128", or "a at task.lag = 4" for a comparison
  int runs = 0, completed = 0, diverged = 0, failed = 0, unfinished = 0;
  int no_value = 0;  // completed, but without a finite y
  std::vector<const Observation*> members;  // its runs, during evaluation only (then cleared)
};

struct ClaimResult {
  std::string result, experiment, claim, kind, expected, series;
  std::string x, y;  // the claim's axes (x empty for compare, ratio, level), to find its figure
  std::string store;  // the sweep directory the runs came from (set by the report)
  double measured = NAN, ci_low = NAN, ci_high = NAN;
  bool evaluated = false;  // false: "n/a", and `note` says why
  // An evaluated claim's verdict from its 95% interval against the expectation: "holds" (the
  // interval lies inside it), "refuted" (outside), "undecided" (across a bound).
  std::string decided;
  bool holds = false;  // decided == "holds" (what readers of the older yes/no verdict read)
  int seeds = 0;       // distinct seeds with a value: the bootstrap resamples these
  // undecided: about how many seeds would decide it (the interval narrows like 1/sqrt(seeds));
  // infinite when more seeds alone would not (the estimate on the bound, an unbounded interval)
  double seeds_to_decide = NAN;
  std::string note;  // why it is n/a; or, for an evaluated claim, missing seeds and dropped resamples
  std::string finding;  // the spec's explanation of the result (its claim's `finding`)
  std::vector<PointCount> points;
  // slope and flat: the power law y = fit_c x^fit_exponent through the seed means (least
  // squares in log-log; fit_exponent is `measured`); NaN otherwise.
  double fit_c = NAN, fit_exponent = NAN;
  int resamples = 0, resamples_dropped = 0;  // bootstrap resamples, and those with a non-finite statistic
  // crossing: resamples in which some x's curve reaches the level outside the `across` grid;
  // their statistic is only bounded (one side infinite), and they count toward the interval.
  int resamples_beyond_grid = 0;

  std::string verdict() const { return !evaluated ? "n/a" : decided; }  // holds | refuted | undecided | n/a
};

// Counts one run into its point by outcome (y: the run's value, NaN if none).
void count_run(PointCount& pc, const Observation& o, double y);

std::vector<ClaimResult> evaluate_claims(const ExperimentSpec& spec, const std::vector<Observation>& obs);

// Helpers shared with the figures: the numeric value of a point's TOML text (NaN if none),
// and a run's y (a summary field, NaN if absent or null).
double point_number(const std::string& toml_text);
double summary_value(const nlohmann::json& summary, const std::string& key);
bool point_matches(const Point& p, const Point& filter);

}  // namespace attnlab
