#pragma once
// attnlab plan --validate (and attnlab.validate_plan): a protocol fixed before anything runs.
// The plan is trained beside (a) the conventional allocation of the budget the plan spends
// (equal shares in heads of dimension 64) and (b) a small grid of uniform allocations of the
// whole budget (H heads of dimension D / L / H in every layer), each over the same seeds
// (at least 8), as one sweep in DIR (DIR/validate.toml, DIR/runs.db: resumable, and
// `attnlab report DIR` reads it). The plan's regret is its mean loss over the grid's best
// mean loss, minus 1, with the claims' paired seed bootstrap; the planner counts as useful on
// the task where the regret's 95% interval lies below the tolerance (1% by default).
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/planner.h"
#include "sweep/runner.h"

namespace attnlab {

struct ValidateOptions {
  std::string config;  // the run config whose task and training every arm uses
  std::string out;     // DIR
  std::vector<int64_t> seeds = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<int> grid_heads;  // the grid's head counts (empty: powers of two with D / L / H in [4, d_max])
  int baseline_dim = 64, d_max = 64;
  double tolerance = 0.01;  // the regret the planner may have and still count as useful
  int jobs = 0;             // runs at a time (0: one per core)
  std::string self_exe = "/proc/self/exe";
  std::function<void()> check;  // SweepOptions::check
  // Pilot compute spent on the plan (--calibrate): runs and their estimated training FLOPs.
  int pilot_runs = 0, pilot_steps = 0;
  double pilot_flops = 0;
};

// The seeds the protocol needs at the least.
constexpr size_t kValidateMinSeeds = 8;

// UserError unless the protocol can run with these options (at least 8 distinct seeds, ...).
void check_validate_options(const ValidateOptions& o);

// The grid's head counts for a budget: powers of two H with 4 <= D / L / H <= d_max.
std::vector<int> validate_grid_heads(int64_t budget, int layers, int d_max);

// Runs the protocol (resuming DIR's runs) and returns its result: {"protocol", "metric",
// "seeds", "arms": [...], "plan", "baseline", "vs_baseline", "grid_best", "regret", "useful",
// "pilot", ...} (README, "attnlab plan"). UserError on bad input (fewer than 8 seeds, a
// config that is not a Transformer's, a DIR holding another protocol's runs).
nlohmann::ordered_json validate_plan(const Plan& plan, const ValidateOptions& opt,
                                     const std::function<void(const SweepProgress&)>& on_progress);

}  // namespace attnlab
