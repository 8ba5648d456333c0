#include "report/plan_validate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "analysis/claims.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/config.h"
#include "report/report.h"
#include "sweep/spec.h"
#include "train/bench.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

// One allocation trained over the seeds, and the names it goes by ("plan", "baseline",
// "grid H=4": a plan equal to a grid point is one arm, run once).
struct Arm {
  std::vector<std::string> names;
  Plan alloc;
  Point point;  // its point in the sweep
  double mean = NAN, train_flops = 0;
  int runs = 0, converged = 0;
  int64_t params_attention = 0;
};

std::string toml_list(const Plan& p, bool heads) {
  std::string s = "[";
  for (size_t i = 0; i < p.layers.size(); ++i) s += (i ? ", " : "") + std::to_string(heads ? p.layers[i].heads : p.layers[i].head_dim);
  return s + "]";
}

std::string alloc_text(const Plan& p) {
  std::string s;
  for (size_t i = 0; i < p.layers.size(); ++i)
    s += (i ? ", " : "") + std::to_string(p.layers[i].heads) + "x" + std::to_string(p.layers[i].head_dim);
  return s;
}

std::vector<std::string> arm_overrides(const Plan& p) {
  return {"model.layers=" + std::to_string(p.layers.size()), "model.heads=" + toml_list(p, true), "model.head_dim=" + toml_list(p, false),
          "model.value_dim=" + toml_list(p, false)};
}

Plan uniform(int layers, int heads, int dim) {
  Plan p;
  p.layers.assign(size_t(layers), LayerPlan{heads, dim, ""});
  p.spent = int64_t(layers) * heads * dim;
  p.profile = "uniform";
  return p;
}

void add_arm(std::vector<Arm>& arms, const std::string& name, const Plan& p) {
  for (auto& a : arms)
    if (toml_list(a.alloc, true) == toml_list(p, true) && toml_list(a.alloc, false) == toml_list(p, false)) {
      a.names.push_back(name);
      return;
    }
  arms.push_back({{name}, p, {}, NAN, 0, 0, 0, 0});
}

const Arm& arm_named(const std::vector<Arm>& arms, const std::string& name) {
  for (const auto& a : arms)
    if (std::find(a.names.begin(), a.names.end(), name) != a.names.end()) return a;
  throw std::logic_error("no arm " + name);
}

std::string protocol_text(const Plan& plan, const std::vector<Arm>& arms, const ValidateOptions& o, const std::string& metric) {
  std::string t = "The protocol of attnlab plan --validate, fixed before any run: every arm trains " + o.config +
                  " (its task, model and training) with its own allocation (model.layers, heads, head_dim = value_dim), once per seed " +
                  fmt::format("{}", fmt::join(o.seeds, ", ")) + ". Metric: " + metric + " (final validation), lower is better. Arms: ";
  for (size_t i = 0; i < arms.size(); ++i)
    t += (i ? "; " : "") + fmt::format("{} = {} (spends {})", fmt::join(arms[i].names, " = "), alloc_text(arms[i].alloc), arms[i].alloc.spent);
  t += fmt::format(
      ". The baseline is the conventional allocation of the budget the plan spends ({}): equal shares in heads of dimension {}. "
      "The grid is the uniform allocations of the whole budget ({}). Verdicts: the plan against the baseline, the relative "
      "difference of the paired seeds with a 95% bootstrap interval over seeds; the regret, mean {} of the plan over the grid's "
      "best mean minus 1, with its interval (the best chosen on the same seeds, which favours the grid); the planner is useful "
      "on this task if the regret's interval lies below {:.3g}%. Pilot runs before the plan: {} of {} steps.",
      plan.spent, o.baseline_dim, plan.budget, metric, 100 * o.tolerance, o.pilot_runs, o.pilot_steps);
  return t;
}

std::string spec_text(const Plan& plan, const std::vector<Arm>& arms, const ValidateOptions& o, const std::string& metric) {
  const nlohmann::json str = fs::absolute(o.config).string();  // JSON string escapes are TOML's
  std::string heads, dims;
  for (size_t i = 0; i < arms.size(); ++i) {
    heads += (i ? ", " : "") + toml_list(arms[i].alloc, true);
    dims += (i ? ", " : "") + toml_list(arms[i].alloc, false);
  }
  std::string seeds;
  for (size_t i = 0; i < o.seeds.size(); ++i) seeds += (i ? ", " : "") + std::to_string(o.seeds[i]);
  return "# Written by attnlab plan --validate before its runs: the protocol they follow.\nbase = " + str.dump() +
         "\n\n[experiment]\nname = \"plan_validate\"\n"
         "title = \"attnlab plan --validate: the plan, the conventional allocation and a grid of uniform allocations\"\n"
         "result = \"p1\"\ndescription = " + nlohmann::json(protocol_text(plan, arms, o, metric)).dump() + "\n\n[sweep]\n\"model.layers\" = [" + std::to_string(plan.layers.size()) + "]\n\"model.heads\" = [" + heads +
         "]\n\"model.head_dim\" = [" + dims + "]\n\"model.value_dim\" = [" + dims + "]\n" +
         (arms.size() > 1 ? "zip = [[\"model.heads\", \"model.head_dim\", \"model.value_dim\"]]\n" : "") + "seeds = [" + seeds + "]\n";
}

ClaimResult compare(const ExperimentSpec& spec, const std::vector<Observation>& obs, const std::string& kind, const Arm& a,
                    const Arm& b, const std::string& metric, double lo, double hi) {
  ClaimSpec c;
  c.kind = kind;
  c.y = metric;
  c.a = a.point;
  c.b = b.point;
  c.a.erase("model.layers");
  c.b.erase("model.layers");
  c.value = lo;
  c.lo = lo;
  c.hi = hi;
  ExperimentSpec s = spec;
  s.claims = {c};
  return evaluate_claims(s, obs)[0];
}

nlohmann::ordered_json interval(double m, double lo, double hi, const std::string& verdict) {
  return {{"measured", m}, {"ci_low", lo}, {"ci_high", hi}, {"verdict", verdict}};
}

}  // namespace

void check_validate_options(const ValidateOptions& o) {
  std::set<int64_t> distinct(o.seeds.begin(), o.seeds.end());
  if (distinct.size() < kValidateMinSeeds)
    throw UserError(fmt::format("--seeds: the validation protocol needs at least {} distinct seeds (got {}): an interval over "
                                "fewer is about their range",
                                kValidateMinSeeds, distinct.size()));
  if (distinct.size() != o.seeds.size()) throw UserError("--seeds: a seed is given twice");
  if (!(o.tolerance > 0 && o.tolerance < 1)) throw UserError(fmt::format("--tolerance: must be in (0, 1) (got {})", o.tolerance));
  if (o.baseline_dim < 1) throw UserError("--baseline-head-dim: must be >= 1");
}

std::vector<int> validate_grid_heads(int64_t D, int L, int d_max) {
  std::vector<int> h;
  for (int64_t H = 1; L >= 1 && D / L / H >= 4; H *= 2)
    if (D / L / H <= d_max) h.push_back(int(H));
  if (h.empty()) throw UserError("--validate: --budget " + std::to_string(D) + " leaves no layer a head of dimension 4: no grid");
  return h;
}

namespace {

// The arms: the plan, the baseline of what it spends, the grid of the whole budget.
std::vector<Arm> make_arms(const Plan& plan, const ValidateOptions& o, const std::vector<int>& grid) {
  const int L = int(plan.layers.size());
  const int64_t share = plan.budget / L;
  std::vector<Arm> arms;
  add_arm(arms, "plan", plan);
  add_arm(arms, "baseline", conventional_allocation(plan.spent, L, o.baseline_dim));
  for (int H : grid) {
    if (H < 1 || share / H < 1)
      throw UserError("--grid-heads: " + std::to_string(H) + " heads leave no dimension of the share " + std::to_string(share));
    add_arm(arms, "grid H=" + std::to_string(H), uniform(L, H, int(share / H)));
  }
  return arms;
}

// Writes DIR/validate.toml, the protocol, and returns its path. A directory with runs of another
// protocol is refused before anything is written (its validate.toml and runs.db stay as they were).
std::string write_protocol(const Plan& plan, const std::vector<Arm>& arms, const ValidateOptions& o, const std::string& metric) {
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) throw UserError(o.out + ": cannot create the directory: " + ec.message());
  const std::string path = (fs::path(o.out) / "validate.toml").string(), text = spec_text(plan, arms, o, metric);
  if (fs::exists(fs::path(o.out) / "runs.db") && (!fs::exists(path) || read_file(path, "protocol") != text))
    throw UserError(o.out + ": holds the runs of another protocol (its validate.toml is not this plan's: another plan, config "
                    "path, seeds or grid); use another --out");
  write_file_atomic(path, text);
  return path;
}

// Each arm's point in the store and its completed runs' mean, converged count and parameters.
void read_arms(std::vector<Arm>& arms, const ExperimentSpec& spec, const std::vector<Observation>& obs, const std::string& metric,
               const std::string& spec_path) {
  std::vector<Point> points;  // distinct, in the order of the zip tuples (= arms)
  for (const auto& r : expand(spec))
    if (std::find(points.begin(), points.end(), r.point) == points.end()) points.push_back(r.point);
  if (points.size() != arms.size()) throw UserError(spec_path + ": the stored protocol has other arms than this plan's");
  for (size_t i = 0; i < arms.size(); ++i) {
    Arm& a = arms[i];
    a.point = points[i];
    double sum = 0;
    for (const auto& ob : obs) {
      if (ob.point != a.point || ob.status != "completed" || !ob.summary.contains(metric) || !ob.summary[metric].is_number()) continue;
      sum += ob.summary[metric].get<double>();
      ++a.runs;
      const auto cv = ob.summary.find("converged"), pa = ob.summary.find("params_attention");
      a.converged += cv != ob.summary.end() && cv->is_boolean() && cv->get<bool>() ? 1 : 0;
      if (pa != ob.summary.end() && pa->is_number_integer()) a.params_attention = pa->get<int64_t>();
    }
    if (a.runs) a.mean = sum / a.runs;
  }
}

// The grid arm with the lowest mean, `except` aside; nullptr if none has one.
const Arm* grid_best(const std::vector<Arm>& arms, const std::vector<int>& grid, const Arm* except) {
  const Arm* best = nullptr;
  for (int H : grid) {
    const Arm& g = arm_named(arms, "grid H=" + std::to_string(H));
    if (&g != except && std::isfinite(g.mean) && (!best || g.mean < best->mean)) best = &g;
  }
  return best;
}

nlohmann::ordered_json arms_json(const std::vector<Arm>& arms) {
  auto ja = nlohmann::ordered_json::array();
  for (const auto& a : arms)
    ja.push_back({{"names", a.names}, {"heads", toml_list(a.alloc, true)}, {"head_dim", toml_list(a.alloc, false)}, {"spent", a.alloc.spent},
                  {"params_attention", a.params_attention}, {"train_flops", a.train_flops}, {"runs", a.runs}, {"converged", a.converged},
                  {"mean", std::isfinite(a.mean) ? nlohmann::ordered_json(a.mean) : nlohmann::ordered_json()}});
  return ja;
}

// The verdicts: the plan against the baseline, its regret against the grid's best (and, when it
// is the best, against the next best), and whether the planner is useful.
void add_verdicts(nlohmann::ordered_json& j, const std::vector<Arm>& arms, const std::vector<int>& grid, const ExperimentSpec& spec,
                  const std::vector<Observation>& obs, const std::string& metric, double tol) {
  const Arm& p = arm_named(arms, "plan");
  const Arm& b = arm_named(arms, "baseline");
  if (&p == &b) {
    j["improvement"] = interval(0, 0, 0, "same allocation");
  } else {
    const ClaimResult c = compare(spec, obs, "compare", p, b, metric, 0.0, INFINITY);
    if (c.evaluated) j["improvement"] = interval(c.measured, c.ci_low, c.ci_high, c.ci_low > 0 ? "plan better" : c.ci_high < 0 ? "baseline better" : "undecided");
    else j["improvement_note"] = c.note;
  }
  j["useful"] = false;
  const Arm* best = grid_best(arms, grid, nullptr);
  if (!best) return;
  j["grid_best"] = best->names;
  j["grid_best_mean"] = best->mean;
  if (best == &p) {
    j["regret"] = interval(0, 0, 0, "holds");
    j["regret_note"] = "the plan is the grid's best point";
    j["useful"] = true;
    if (const Arm* next = grid_best(arms, grid, &p)) {  // how far ahead (negative: ahead)
      const ClaimResult c = compare(spec, obs, "ratio", *next, p, metric, 0.0, 1.0 + tol);
      j["grid_next_best"] = next->names;
      if (c.evaluated) j["regret_next"] = interval(c.measured - 1, c.ci_low - 1, c.ci_high - 1, c.decided);
    }
    return;
  }
  const ClaimResult c = compare(spec, obs, "ratio", *best, p, metric, 0.0, 1.0 + tol);
  if (!c.evaluated) {
    j["regret_note"] = c.note;
    return;
  }
  j["regret"] = interval(c.measured - 1, c.ci_low - 1, c.ci_high - 1, c.decided);
  j["useful"] = c.decided == "holds";
}

}  // namespace

nlohmann::ordered_json validate_plan(const Plan& plan, const ValidateOptions& o, const std::function<void(const SweepProgress&)>& on_progress) {
  check_validate_options(o);
  const auto grid = o.grid_heads.empty() ? validate_grid_heads(plan.budget, int(plan.layers.size()), o.d_max) : o.grid_heads;
  std::vector<Arm> arms = make_arms(plan, o, grid);
  // The metric and each arm's cost, from its resolved config (a bad config fails here, before any run).
  const RunConfig base = load_run_config(o.config, arm_overrides(plan));
  if (base.model.kind != "transformer") throw UserError(o.config + ": model.kind: --validate trains a Transformer");
  const std::string metric = base.task.kind == "text_lm" ? "final_val_bits_per_byte" : "final_val_loss";
  for (auto& a : arms) a.train_flops = estimated_run_flops(load_run_config(o.config, arm_overrides(a.alloc)));

  SweepOptions so;
  so.spec_path = write_protocol(plan, arms, o, metric);
  so.out = o.out;
  so.jobs = o.jobs;
  so.self_exe = o.self_exe;
  so.check = o.check;
  run_sweep(so, on_progress ? on_progress : [](const SweepProgress&) {});

  ExperimentSpec spec;
  const auto obs = store_observations(o.out, &spec);
  read_arms(arms, spec, obs, metric, so.spec_path);
  const Arm& p = arm_named(arms, "plan");
  const Arm& b = arm_named(arms, "baseline");
  nlohmann::ordered_json j{{"protocol", spec.description}, {"metric", metric}, {"seeds", o.seeds}, {"tolerance", o.tolerance}};
  j["arms"] = arms_json(arms);
  j["plan"] = p.mean;
  j["baseline"] = b.mean;
  j["plan_params_attention"] = p.params_attention;
  j["baseline_params_attention"] = b.params_attention;
  auto jl = nlohmann::ordered_json::array();
  for (const auto& l : b.alloc.layers) jl.push_back({{"heads", l.heads}, {"head_dim", l.head_dim}});
  j["baseline_layers"] = jl;
  add_verdicts(j, arms, grid, spec, obs, metric, o.tolerance);
  double validation_flops = 0;
  for (const auto& a : arms) validation_flops += a.train_flops * double(o.seeds.size());
  j["pilot"] = {{"runs", o.pilot_runs}, {"steps", o.pilot_steps}, {"flops", o.pilot_flops},
                {"per_plan_run", p.train_flops > 0 ? o.pilot_flops / p.train_flops : 0.0}};
  j["validation_flops"] = validation_flops;
  return j;
}

}  // namespace attnlab
