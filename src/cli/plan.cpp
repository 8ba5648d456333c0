// attnlab plan --budget D --layers L --seq-len T [--memories M] [--profile front|uniform]
//              [--calibrate SPEC [--pilot-steps N] [--tolerance F]] [--validate CONFIG] [--out DIR] [--json FILE]
#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>

#include "analysis/claims.h"
#include "analysis/planner.h"
#include "cli/cli.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/config.h"
#include "train/trainer.h"

namespace attnlab::cli {

namespace {

std::string list(const Plan& p, bool heads) {
  std::string s = "[";
  for (size_t i = 0; i < p.layers.size(); ++i) s += (i ? "," : "") + std::to_string(heads ? p.layers[i].heads : p.layers[i].head_dim);
  return s + "]";
}

nlohmann::ordered_json plan_json(const Plan& p) {
  nlohmann::ordered_json j{{"budget", p.budget}, {"spent", p.spent}, {"profile", p.profile}};
  auto ls = nlohmann::ordered_json::array();
  for (const auto& l : p.layers) ls.push_back({{"heads", l.heads}, {"head_dim", l.head_dim}, {"reason", l.reason}});
  j["layers"] = ls;
  return j;
}

// Trains CONFIG with the allocation of p (model.layers, heads, head_dim, value_dim = head_dim);
// `extra` overrides come last (the pilots' train.steps).
nlohmann::json train_with(const std::string& config, const Plan& p, const std::string& dir, const std::string& name, int64_t seed,
                          const std::vector<std::string>& extra = {}) {
  std::vector<std::string> ov = {"model.layers=" + std::to_string(p.layers.size()), "model.heads=" + list(p, true),
                                 "model.head_dim=" + list(p, false), "model.value_dim=" + list(p, false), "seed=" + std::to_string(seed)};
  ov.insert(ov.end(), extra.begin(), extra.end());
  const RunConfig cfg = load_run_config(config, ov);
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
                      const std::vector<int64_t>& seeds, std::vector<int> dims, const std::string& dir) {
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
                                  {"train.steps=" + std::to_string(steps)});
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

}  // namespace

std::function<int()> add_plan(CLI::App& app) {
  struct Args {
    int64_t budget = 0;
    int layers = 0, seq_len = 0, memories = 4, d_max = 64;
    int baseline_dim = 64, pilot_steps = 500;
    double tolerance = 0.01;
    std::string calibrate;
    std::vector<int> pilot_dims;
    bool trade_off = false;
    std::vector<int64_t> seeds = {1};
    std::string profile = "uniform", validate, out = "runs/plan", json;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("plan", "Turn an attention budget D = sum H_l d_l into heads and head dimensions per layer");
  sub->add_option("--budget", a->budget, "D, the attention budget: sum over layers of heads x head dimension")->required();
  sub->add_option("--layers", a->layers, "L, the number of layers")->required();
  sub->add_option("--seq-len", a->seq_len, "T, the sequence length")->required();
  sub->add_option("--memories", a->memories, "M, the positions the first layer must extract (default 4)");
  sub->add_option("--profile", a->profile, "How the budget falls over layers: uniform (default) | front");
  sub->add_option("--baseline-head-dim", a->baseline_dim, "--validate: the baseline's head dimension (default 64)");
  sub->add_option("--max-head-dim", a->d_max, "Largest head dimension before adding heads instead (default 64)");
  sub->add_option("--calibrate", a->calibrate,
                  "First measure on this config's task (or spec's base), with short pilot runs, the saturation dimension d* "
                  "at M heads: the plan's head dimensions stop at d*");
  sub->add_option("--pilot-steps", a->pilot_steps, "--calibrate: training steps of each pilot run (default 500)");
  sub->add_flag("--trade-off", a->trade_off,
                "--calibrate: first pilot the head count too (H heads of dimension share / H); the best, H*, replaces --memories. "
                "Needs pilots as long as the real run: short ones favour many small heads");
  sub->add_option("--pilot-dims", a->pilot_dims,
                  "--calibrate: the head dimensions of the saturation pilots, increasing (default: 2, 4, 8, ... up to budget / layers / heads)")
      ->delimiter(',');
  sub->add_option("--tolerance", a->tolerance,
                  "--calibrate: d* is the smallest d whose loss is within this fraction of the best pilot's (default 0.01); "
                  "--validate: the margin of 'equal loss'");
  sub->add_option("--validate", a->validate, "Train the plan and the baseline (equal shares, heads of dimension 64) on this config");
  sub->add_option("--seeds", a->seeds, "--validate, --calibrate: seeds to train each side with (default 1), e.g. 1,2,3: a CI over seeds")->delimiter(',');
  sub->add_option("--out", a->out, "--validate: run directories DIR/plan/seed=N and DIR/baseline/seed=N (default runs/plan)");
  sub->add_option("--json", a->json, "Write {\"budget\", \"layers\": [{\"heads\", \"head_dim\", \"reason\"}], ...} to FILE");
  sub->footer("Example: attnlab plan --budget 384 --layers 6 --seq-len 64 --validate experiments/sparse_memory.toml");
  return [a]() {
    if (a->budget < 1) throw UserError("--budget: must be >= 1 (got " + std::to_string(a->budget) + ")");
    if (a->d_max < 1) throw UserError("--max-head-dim: must be >= 1");
    if (a->pilot_steps < 1) throw UserError("--pilot-steps: must be >= 1 (got " + std::to_string(a->pilot_steps) + ")");
    if (!(a->tolerance >= 0 && a->tolerance < 1)) throw UserError("--tolerance: must be in [0, 1) (got " + fmt::format("{}", a->tolerance) + ")");
    if (a->seeds.empty()) throw UserError("--seeds: give at least one seed");
    plan_allocation(a->budget, a->layers, a->seq_len, a->memories, a->profile, a->d_max);  // bad arguments fail before any pilot
    if (a->calibrate.empty() && (a->trade_off || !a->pilot_dims.empty()))
      throw UserError(std::string(a->trade_off ? "--trade-off" : "--pilot-dims") + ": only with --calibrate SPEC");
    check_pilot_dims(a->pilot_dims, a->budget / a->layers, "budget / layers");  // layers >= 1: checked above
    Calibration cal;
    if (!a->calibrate.empty())
      cal = calibrate(a->calibrate, a->budget, a->layers, a->memories, a->trade_off, a->d_max, a->pilot_steps, a->tolerance, a->seeds, a->pilot_dims, a->out);
    const Plan p = plan_allocation(a->budget, a->layers, a->seq_len, a->memories, a->profile, a->d_max, a->calibrate.empty() ? nullptr : &cal);
    fmt::print("budget D = {}, spent {} ({} profile, T = {}, M = {})\n", p.budget, p.spent, p.profile, p.seq_len, p.memories);
    for (size_t l = 0; l < p.layers.size(); ++l)
      fmt::print("layer {}: {} heads x {} = {}  {}\n", l, p.layers[l].heads, p.layers[l].head_dim,
                 p.layers[l].heads * p.layers[l].head_dim, p.layers[l].reason);
    nlohmann::ordered_json j = plan_json(p);
    if (!a->validate.empty()) {
      const Plan u = conventional_allocation(a->budget, a->layers, a->baseline_dim);
      // Paired by seed; the relative improvement of the plan over the baseline with the claims'
      // seed bootstrap (a compare claim over the two allocations).
      std::vector<Observation> obs;
      std::string key;
      double mp = 0, mb = 0;
      int64_t pp = 0, pb = 0;
      for (int64_t seed : a->seeds) {
        const auto sp = train_with(a->validate, p, a->out, "plan", seed), sb = train_with(a->validate, u, a->out, "baseline", seed);
        key = loss_key(sp);
        for (const auto* s : {&sp, &sb}) {
          Observation o;
          o.id = std::string(s == &sp ? "plan" : "baseline") + "/seed=" + std::to_string(seed);
          o.point["allocation"] = s == &sp ? "\"plan\"" : "\"baseline\"";
          o.seed = seed;
          o.status = (*s)["status"].get<std::string>();
          o.summary = *s;
          obs.push_back(o);
        }
        mp += loss_of(sp, key) / double(a->seeds.size());
        mb += loss_of(sb, key) / double(a->seeds.size());
        pp = sp["params_attention"].get<int64_t>();
        pb = sb["params_attention"].get<int64_t>();
      }
      ExperimentSpec spec;
      spec.name = "plan_validate";
      ClaimSpec c;
      c.kind = "compare";
      c.y = key;
      c.a["allocation"] = "\"plan\"";
      c.b["allocation"] = "\"baseline\"";
      c.value = 0.0;
      spec.claims = {c};
      const ClaimResult r = evaluate_claims(spec, obs)[0];
      fmt::print("validate ({} seeds): {} plan {:.6g} (attention params {}), baseline {} {:.6g} (attention params {})\n",
                 a->seeds.size(), key, mp, pp, list(u, true) + "x" + list(u, false), mb, pb);
      if (r.evaluated)
        fmt::print("plan lower than baseline by {:+.2f}% [{:+.2f}%, {:+.2f}%] (95% CI over seeds){}\n", 100 * r.measured,
                   100 * r.ci_low, 100 * r.ci_high,
                   r.ci_low > 0 ? ": the plan is better" : r.ci_high < 0 ? ": the baseline is better" : ": not decided by these seeds");
      else
        fmt::print("no comparison: {}\n", r.note);
      // With fewer attention parameters, the question is whether the loss is equal: the CI of
      // the relative difference inside +-tolerance.
      const bool saves = pp < pb;
      if (saves && r.evaluated)
        fmt::print("the plan uses {:.1f}% fewer attention parameters; its loss is {}\n", 100.0 * double(pb - pp) / double(pb),
                   r.ci_low > -a->tolerance && r.ci_high < a->tolerance
                       ? fmt::format("equal to the baseline's within {:.3g}% (CI inside +-{:.3g}%)", 100 * a->tolerance, 100 * a->tolerance)
                   : r.ci_high < -a->tolerance ? fmt::format("more than {:.3g}% worse (decided)", 100 * a->tolerance)
                                               : fmt::format("not shown equal within {:.3g}% by these seeds", 100 * a->tolerance));
      j["validate"] = {{"metric", key}, {"seeds", a->seeds}, {"plan", mp}, {"baseline", mb}, {"baseline_layers", plan_json(u)["layers"]},
                       {"plan_params_attention", pp}, {"baseline_params_attention", pb}};
      if (r.evaluated) {
        j["validate"]["improvement"] = {{"measured", r.measured}, {"ci_low", r.ci_low}, {"ci_high", r.ci_high}};
        j["validate"]["equal_within_tolerance"] = r.ci_low > -a->tolerance && r.ci_high < a->tolerance;
      }
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
