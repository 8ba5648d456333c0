// attnlab plan --budget D --layers L --seq-len T [--memories M] [--key-dim K] [--profile front|uniform]
//              [--calibrate SPEC [--pilot-steps N] [--tolerance F]] [--validate CONFIG [--seeds LIST]] [--out DIR] [--json FILE]
#include <fmt/format.h>

#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>

#include "analysis/planner.h"
#include "cli/cli.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/config.h"
#include "report/plan_validate.h"
#include "train/bench.h"
#include "train/trainer.h"

namespace attnlab::cli {

std::function<void(const SweepProgress&)> sweep_progress_printer(const std::string& name);

namespace {

std::string list(const Plan& p, bool heads) {
  std::string s = "[";
  for (size_t i = 0; i < p.layers.size(); ++i) s += (i ? "," : "") + std::to_string(heads ? p.layers[i].heads : p.layers[i].head_dim);
  return s + "]";
}

// Trains CONFIG with the allocation of p (model.layers, heads, head_dim, value_dim = head_dim);
// `extra` overrides come last (the pilots' train.steps). Adds the run's estimated training FLOPs to *flops.
nlohmann::json train_with(const std::string& config, const Plan& p, const std::string& dir, const std::string& name, int64_t seed,
                          const std::vector<std::string>& extra, double* flops) {
  std::vector<std::string> ov = {"model.layers=" + std::to_string(p.layers.size()), "model.heads=" + list(p, true),
                                 "model.head_dim=" + list(p, false), "model.value_dim=" + list(p, false), "seed=" + std::to_string(seed)};
  ov.insert(ov.end(), extra.begin(), extra.end());
  const RunConfig cfg = load_run_config(config, ov);
  *flops += estimated_run_flops(cfg);
  if (cfg.model.kind != "transformer") throw UserError(config + ": model.kind: --validate and --calibrate train a Transformer");
  TrainOutput out;
  out.dir = dir + "/" + name + "/seed=" + std::to_string(seed);
  out.resolved_config = resolved_toml(cfg);
  fmt::print(stderr, "training the {} allocation -> {}\n", name, out.dir);
  return train_run(cfg, out);
}

std::string loss_key(const nlohmann::json& s) {
  return s.contains("final_val_bits_per_byte") ? "final_val_bits_per_byte" : "final_val_loss";
}

double loss_of(const nlohmann::json& s, const std::string& key) {
  return s.value("status", "") == "completed" && s.contains(key) && s[key].is_number() ? s[key].get<double>() : NAN;
}

// --pilot-dims: increasing, each in [1, top].
void check_pilot_dims(const std::vector<int>& dims, int64_t top, const std::string& what) {
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] < 1 || dims[i] > top)
      throw UserError("--pilot-dims: " + std::to_string(dims[i]) + " is not in [1, " + what + " = " + std::to_string(top) + "]");
    if (i && dims[i] <= dims[i - 1])
      throw UserError("--pilot-dims: must increase (" + std::to_string(dims[i]) + " after " + std::to_string(dims[i - 1]) + ")");
  }
}

// --calibrate: pilot runs of the user's task, each seed s of --seeds as pilot seed 1000 + s (so
// that --validate's seeds are fresh). With --trade-off, first the trade-off: H heads of
// dimension share / H in every layer, for the counts of calibration_heads; H* is the best.
// Then, at M heads (or H*), the dimensions of calibration_dims (or --pilot-dims); d* is where
// the mean loss comes within the tolerance of the best. A (H, d) pilot is run once.
Calibration calibrate(const std::string& config, int64_t D, int L, int M, bool trade_off, int d_max, int steps, double tol,
                      const std::vector<int64_t>& seeds, std::vector<int> dims, const std::string& dir, ValidateOptions& spent) {
  Calibration c;
  c.tolerance = tol;
  std::map<std::pair<int, int>, double> done;
  auto pilot = [&](int H, int d) {
    const auto key = std::make_pair(H, d);
    if (!done.count(key)) {
      Plan p;
      p.layers.assign(size_t(L), LayerPlan{H, d, ""});
      double sum = 0;
      for (int64_t seed : seeds) {
        const auto s = train_with(config, p, dir, "calibrate/H=" + std::to_string(H) + ",d=" + std::to_string(d), 1000 + seed,
                                  {"train.steps=" + std::to_string(steps)}, &spent.pilot_flops);
        ++spent.pilot_runs;
        c.metric = loss_key(s);
        sum += loss_of(s, c.metric);
      }
      done[key] = sum / double(seeds.size());
      fmt::print("pilot {} heads x {}: {} {:.6g}\n", H, d, c.metric, done[key]);
    }
    return done[key];
  };
  const int64_t share = D / L;
  if (trade_off) {
    c.heads = calibration_heads(D, L, d_max);
    fmt::print(stderr, "calibrating: the trade-off, {} heads of dimension {} / H in each of {} layers ({} steps, pilot seeds 1000 + {})\n",
               fmt::join(c.heads, ", "), share, L, steps, fmt::join(seeds, ","));
    for (int H : c.heads) c.head_losses.push_back(pilot(H, int(share / H)));
    c.best_heads = c.heads[best_index(c.head_losses)];
    fmt::print("best head count H* = {} (of {})\n", c.best_heads, fmt::join(c.heads, ", "));
  }
  const int Hs = trade_off ? c.best_heads : M;  // the saturation pilots' head count
  if (dims.empty()) dims = calibration_dims(D, L, Hs, d_max);
  check_pilot_dims(dims, share / Hs, "budget / layers / heads");
  c.dims = dims;
  fmt::print(stderr, "calibrating: saturation, {} heads of dimension {}\n", Hs, fmt::join(c.dims, ", "));
  for (int d : c.dims) c.losses.push_back(pilot(Hs, d));
  c.saturation = saturation_point(c.dims, c.losses, tol);
  fmt::print("saturation point d* = {} at {} heads (the smallest d within {:.3g}% of the best of these pilots)\n", c.saturation,
             Hs, 100 * tol);
  return c;
}


// The validation's result on stdout: the arms, the plan against the baseline, the regret.
void print_validation(const nlohmann::ordered_json& v) {
  fmt::print("validation ({} seeds, {}):\n", v["seeds"].size(), v["metric"].get<std::string>());
  for (const auto& a : v["arms"])
    fmt::print("  {:<34} heads {} x {}: spent {}, attention params {}, {:.3g} training FLOPs a run, mean {}\n",
               fmt::format("{}", fmt::join(a["names"].get<std::vector<std::string>>(), " = ")), a["heads"].get<std::string>(),
               a["head_dim"].get<std::string>(), a["spent"].get<int64_t>(), a["params_attention"].get<int64_t>(),
               a["train_flops"].get<double>(), a["mean"].is_number() ? fmt::format("{:.6g} ({} runs, {} converged)", a["mean"].get<double>(), a["runs"].get<int>(), a["converged"].get<int>()) : "none");
  auto pct = [](const nlohmann::ordered_json& i) {
    return fmt::format("{:+.2f}% [{:+.2f}%, {:+.2f}%]", 100 * i["measured"].get<double>(), 100 * i["ci_low"].get<double>(), 100 * i["ci_high"].get<double>());
  };
  if (v.contains("improvement"))
    fmt::print("plan against the baseline (at the plan's spent budget): lower by {}: {}\n", pct(v["improvement"]),
               v["improvement"]["verdict"].get<std::string>());
  else fmt::print("plan against the baseline: no comparison ({})\n", v.value("improvement_note", ""));
  if (v.contains("regret"))
    fmt::print("regret against the grid's best ({}): {}: {} the tolerance {:.3g}%{}\n",
               fmt::format("{}", fmt::join(v["grid_best"].get<std::vector<std::string>>(), " = ")), pct(v["regret"]),
               v["regret"]["verdict"] == "holds" ? "at most" : v["regret"]["verdict"] == "refuted" ? "above" : "not decided against",
               100 * v["tolerance"].get<double>(),
               v.contains("regret_note") ? "; " + v["regret_note"].get<std::string>() : "");
  else fmt::print("regret: none ({})\n", v.value("regret_note", "no grid point completed"));
  if (v.contains("regret_next"))
    fmt::print("the plan against the grid's next best ({}): {}\n",
               fmt::format("{}", fmt::join(v["grid_next_best"].get<std::vector<std::string>>(), " = ")), pct(v["regret_next"]));
  fmt::print("the planner is {} on this task\n", v["useful"].get<bool>() ? "useful (regret at most the tolerance, decided)"
                                                                          : "not shown useful (its regret is not decided below the tolerance)");
  fmt::print("pilot compute: {} runs of {} steps, {:.3g} FLOPs ({:.2f} plan runs); validation {:.3g} FLOPs\n", v["pilot"]["runs"].get<int>(),
             v["pilot"]["steps"].get<int>(), v["pilot"]["flops"].get<double>(), v["pilot"]["per_plan_run"].get<double>(),
             v["validation_flops"].get<double>());
}

}  // namespace

std::function<int()> add_plan(CLI::App& app) {
  struct Args {
    PlanRequest req;
    int baseline_dim = 64, pilot_steps = 500, jobs = 0;
    double tolerance = 0.01;
    std::string calibrate;
    std::vector<int> pilot_dims, grid_heads;
    bool trade_off = false;
    std::vector<int64_t> seeds = {1, 2, 3, 4, 5, 6, 7, 8}, pilot_seeds = {1};
    std::string validate, out = "runs/plan", json;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("plan", "Turn an attention budget D = sum H_l d_l into heads and head dimensions per layer");
  sub->add_option("--budget", a->req.budget, "D, the attention budget: sum over layers of heads x head dimension")->required();
  sub->add_option("--layers", a->req.layers, "L, the number of layers")->required();
  sub->add_option("--seq-len", a->req.seq_len, "T, the sequence length: sets the saturation point d*(T) the head dimension stops at")->required();
  sub->add_option("--memories", a->req.memories, "M, the positions a layer must fetch: M heads (default 4)");
  sub->add_option("--key-dim", a->req.key_dim, "K, the dimension of what a query matches, if known: d* is at least 2K");
  sub->add_option("--profile", a->req.profile, "How the budget falls over layers: uniform (default) | front");
  sub->add_option("--baseline-head-dim", a->baseline_dim, "--validate: the baseline's head dimension (default 64)");
  sub->add_option("--max-head-dim", a->req.d_max, "Largest head dimension (default 64); with --calibrate finding no saturation, a larger share gets more heads");
  sub->add_option("--calibrate", a->calibrate,
                  "First measure on this config's task (or spec's base), with short pilot runs, the saturation dimension d* "
                  "at M heads: it replaces d*(T)");
  sub->add_option("--pilot-steps", a->pilot_steps, "--calibrate: training steps of each pilot run (default 500)");
  sub->add_option("--pilot-seeds", a->pilot_seeds, "--calibrate: seeds s of the pilots, run as 1000 + s (default 1)")->delimiter(',');
  sub->add_flag("--trade-off", a->trade_off,
                "--calibrate: first pilot the head count too (H heads of dimension share / H); the best, H*, replaces --memories. "
                "Needs pilots as long as the real run: short ones favour many small heads");
  sub->add_option("--pilot-dims", a->pilot_dims,
                  "--calibrate: the head dimensions of the saturation pilots, increasing (default: 2, 4, 8, ... up to budget / layers / heads)")
      ->delimiter(',');
  sub->add_option("--tolerance", a->tolerance,
                  "--calibrate: d* is the smallest d whose loss is within this fraction of the best pilot's; --validate: the regret "
                  "the plan may have against the grid's best and count as useful (default 0.01)");
  sub->add_option("--validate", a->validate,
                  "Run the validation protocol on this config: the plan, the conventional allocation of the budget it spends, and "
                  "a grid of uniform allocations, over --seeds, as a sweep in --out");
  sub->add_option("--seeds", a->seeds, "--validate: the seeds every arm trains with (default 1,...,8; at least 8)")->delimiter(',');
  sub->add_option("--grid-heads", a->grid_heads,
                  "--validate: the grid's head counts (default: powers of two with budget / layers / H in [4, --max-head-dim])")
      ->delimiter(',');
  sub->add_option("-j,--jobs", a->jobs, "--validate: runs at a time (default: one per core)");
  sub->add_option("--out", a->out, "--validate: the sweep directory (validate.toml, runs.db, runs/); --calibrate: DIR/calibrate (default runs/plan)");
  sub->add_option("--json", a->json, "Write {\"budget\", \"layers\": [{\"heads\", \"head_dim\", \"reason\"}], ...} to FILE");
  sub->footer("Example: attnlab plan --budget 128 --layers 2 --seq-len 64 --memories 2 --validate experiments/plan/heldout_sparse2.toml");
  return [a]() {
    if (a->req.budget < 1) throw UserError("--budget: must be >= 1 (got " + std::to_string(a->req.budget) + ")");
    if (a->pilot_steps < 1) throw UserError("--pilot-steps: must be >= 1 (got " + std::to_string(a->pilot_steps) + ")");
    if (!(a->tolerance >= 0 && a->tolerance < 1)) throw UserError("--tolerance: must be in [0, 1) (got " + fmt::format("{}", a->tolerance) + ")");
    if (a->pilot_seeds.empty()) throw UserError("--pilot-seeds: give at least one seed");
    plan_allocation(a->req);  // bad arguments fail before any pilot
    if (a->calibrate.empty() && (a->trade_off || !a->pilot_dims.empty()))
      throw UserError(std::string(a->trade_off ? "--trade-off" : "--pilot-dims") + ": only with --calibrate SPEC");
    check_pilot_dims(a->pilot_dims, a->req.budget / a->req.layers, "budget / layers");  // layers >= 1: checked above
    ValidateOptions vo;
    vo.config = a->validate;
    vo.out = a->out;
    vo.seeds = a->seeds;
    vo.grid_heads = a->grid_heads;
    vo.baseline_dim = a->baseline_dim;
    vo.d_max = a->req.d_max;
    vo.tolerance = a->tolerance;
    vo.jobs = a->jobs;
    if (!a->validate.empty()) {  // the protocol's own checks, before any pilot
      check_validate_options(vo);
      vo.pilot_steps = a->calibrate.empty() ? 0 : a->pilot_steps;
    }
    Calibration cal;
    if (!a->calibrate.empty())
      cal = calibrate(a->calibrate, a->req.budget, a->req.layers, a->req.memories, a->trade_off, a->req.d_max, a->pilot_steps, a->tolerance,
                      a->pilot_seeds, a->pilot_dims, a->out, vo);
    const Plan p = plan_allocation(a->req, a->calibrate.empty() ? nullptr : &cal);
    fmt::print("budget D = {}, spent {} ({} profile, T = {}, M = {})\n", p.budget, p.spent, p.profile, p.seq_len, p.memories);
    for (size_t l = 0; l < p.layers.size(); ++l)
      fmt::print("layer {}: {} heads x {} = {}  {}\n", l, p.layers[l].heads, p.layers[l].head_dim,
                 p.layers[l].heads * p.layers[l].head_dim, p.layers[l].reason);
    nlohmann::ordered_json j = plan_json(p);
    if (!a->validate.empty()) {
      fmt::print("validating: seeds {}, tolerance {:.3g}% on the regret, grid H = {}, baseline heads of dimension {}, pilots {}; "
                 "the protocol in {}/validate.toml, the runs in {}/runs.db\n",
                 fmt::join(vo.seeds, ","), 100 * vo.tolerance,
                 fmt::join(vo.grid_heads.empty() ? validate_grid_heads(p.budget, int(p.layers.size()), vo.d_max) : vo.grid_heads, ","),
                 vo.baseline_dim, vo.pilot_runs ? fmt::format("{} runs of {} steps", vo.pilot_runs, vo.pilot_steps) : "none",
                 a->out, a->out);
      std::fflush(stdout);
      j["validate"] = validate_plan(p, vo, sweep_progress_printer("plan --validate"));
      if (isatty(fileno(stderr))) fmt::print(stderr, "\n");
      print_validation(j["validate"]);
    }
    if (!a->calibrate.empty())
      j["calibration"] = {{"metric", cal.metric}, {"heads", cal.heads}, {"head_losses", cal.head_losses}, {"best_heads", cal.best_heads},
                          {"dims", cal.dims}, {"losses", cal.losses}, {"tolerance", cal.tolerance},
                          {"saturation", cal.saturation}, {"pilot_steps", a->pilot_steps}};
    if (!a->json.empty()) write_file_atomic(a->json, j.dump(2) + "\n");
    return 0;
  };
}

}  // namespace attnlab::cli
