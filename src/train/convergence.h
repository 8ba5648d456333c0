#pragma once
// Whether a run converged, from its validation curve (issue 24). The rule, documented in the
// README: final_slope is the least-squares slope of the validation loss against the step over
// the evaluations in the last 20% of the steps (the last two evaluations if fewer than two fall
// there), as the relative change per tenth of the run (slope x steps / 10 / mean loss there). A
// run converged when its validation loss is no longer falling by more than kConvergeTol (1%)
// per tenth: final_slope >= -kConvergeTol. A loss that rises at the end (over-fitting) has
// converged in this sense: more steps would not lower its minimum.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace attnlab {

constexpr double kConvergeTol = 0.01;

struct Convergence {
  double final_slope = 0;  // NaN with fewer than two finite evaluations
  bool converged = false;
};

// vals: (step, validation loss) of every evaluation, in order; steps: the run's length.
Convergence convergence_of(const std::vector<std::pair<int64_t, double>>& vals, int64_t steps);

// The same from a run's metrics.jsonl (its "step" and "val_loss" fields).
Convergence convergence_of_metrics(const std::string& metrics_path, int64_t steps);

}  // namespace attnlab
