// attnlab train CONFIG.toml [key=value ...] [--out DIR]
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <fmt/core.h>

#include "analysis/compress_summary.h"
#include "cli/cli.h"
#include "core/dist.h"
#include "core/error.h"
#include "io/config.h"
#include "sweep/spec.h"
#include "train/train_state.h"
#include "train/trainer.h"

namespace attnlab::cli {

namespace {

std::string human(double x) {
  if (x >= 1e6) return fmt::format("{:.2f}M", x / 1e6);
  if (x >= 1e3) return fmt::format("{:.1f}k", x / 1e3);
  return fmt::format("{:.0f}", x);
}

// One live line on a terminal (about 10 updates a second); a line per evaluation otherwise.
std::function<void(const Progress&)> progress_printer() {
  const bool tty = isatty(fileno(stderr));
  auto last = std::make_shared<double>(-1.0);
  return [tty, last](const Progress& p) {
    const bool done = p.step == p.steps;
    if (tty) {
      if (!done && p.elapsed_s - *last < 0.1) return;
      *last = p.elapsed_s;
      const double eta = p.elapsed_s / double(p.step) * double(p.steps - p.step);
      fmt::print(stderr, "\r\033[Kstep {}/{} | loss {:.4g} | val {:.4g} | {} tok/s | ETA {:.0f}s{}", p.step, p.steps,
                 p.train_loss, p.val_loss, human(p.tokens_per_s), eta, done ? "\n" : "");
    } else if (p.evaluated) {
      fmt::print(stderr, "step {}/{} train_loss {:.6g} val_loss {:.6g} tokens/s {:.0f} elapsed {:.1f}s\n", p.step,
                 p.steps, p.train_loss, p.val_loss, p.tokens_per_s, p.elapsed_s);
    }
  };
}

// --resume DIR: DIR holds the checkpoint of a run of this very config (train.threads aside:
// it changes no number, only the speed).
void check_resumable(const std::string& dir, const std::string& out, const std::string& resolved) {
  namespace fs = std::filesystem;
  if (!out.empty() && fs::weakly_canonical(out) != fs::weakly_canonical(dir))
    throw UserError("--resume " + dir + " --out " + out + ": a resumed run writes to its own directory (drop --out)");
  const std::string ckpt = checkpoint_path(dir);
  if (!fs::exists(ckpt)) {
    if (fs::exists(dir + "/model.safetensors") && fs::exists(dir + "/summary.json"))
      throw UserError(dir + ": the run has completed (model.safetensors, summary.json): nothing to resume");
    throw UserError(ckpt + ": no checkpoint to resume from (the run wrote none: start it again without --resume)");
  }
  auto normal = [&](const std::string& text, const std::string& source) {
    RunConfig c = parse_run_config(text, source, {}, "");
    c.train.threads = 0;
    return resolved_toml(c);
  };
  const std::string had = normal(train_state_config(ckpt), ckpt + " (its config)"), now = normal(resolved, "config");
  if (had != now) {
    std::string was, is;
    const std::string key = first_changed_key(had, now, &was, &is);
    throw UserError(ckpt + ": was written by a run with " + key + " = " + was + ", but the config gives " + key + " = " + is +
                    " (a run resumes with the config it started with: DIR/config.toml)");
  }
}

}  // namespace

std::function<int()> add_train(CLI::App& app) {
  struct Args {
    std::string config, out, scale, resume;
    std::vector<std::string> overrides;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("train", "Train one model on one task from a TOML config");
  sub->add_option("config", a->config, "Run config (TOML); see README, 'Config reference'")->required();
  sub->add_option("overrides", a->overrides, "Overrides key=value, e.g. model.heads=[8,4] train.lr=3e-4");
  sub->add_option("--out", a->out, "Output directory (default: runs/<config name>)");
  sub->add_option("--scale", a->scale, "For an experiment spec: apply its [scale.NAME] settings (quick | full)");
  sub->add_option("--resume", a->resume,
                  "Continue the run in DIR from DIR/checkpoint.safetensors (same config; the output DIR)");
  sub->footer(
      "Writes DIR/config.toml (resolved), DIR/metrics.jsonl, DIR/summary.json, DIR/model.safetensors.\n"
      "A run killed at any moment continues with --resume DIR and ends as if never interrupted.\n"
      "Example: attnlab train experiments/sparse_memory.toml model.heads=8 --out runs/h8\n"
      "         attnlab train runs/h8/config.toml --resume runs/h8");
  return [a]() {
    const RunConfig cfg = load_run_config(a->config, a->overrides, a->scale);
    TrainOutput out;
    out.dir = a->out.empty() ? "runs/" + std::filesystem::path(a->config).stem().string() : a->out;
    out.resolved_config = resolved_toml(cfg);
    if (!a->resume.empty()) check_resumable(a->resume, a->out, out.resolved_config);
    if (!a->resume.empty()) out.dir = a->resume;
    out.resume = !a->resume.empty();
    const bool lead = dist::rank() == 0;  // under mpirun, rank 0 speaks and writes
    if (lead) {
      out.on_progress = progress_printer();
      out.on_resume = [&](int64_t step) { fmt::print(stderr, "resuming {} from step {} of {}\n", out.dir, step, cfg.train.steps); };
    }
    if (lead && dist::size() > 1)
      fmt::print(stderr, "data parallel over {} MPI ranks: {} rows of each batch per rank\n", dist::size(),
                 double(full_batch(cfg.train) ? cfg.task.n_train : cfg.train.batch) / dist::size());
    auto s = train_run(cfg, out);
    if (!lead) return 0;
    if (wants_compression(cfg.train) && s["status"] == "completed") {  // paper 1: the compression curve
      add_compression_curve(cfg, out.dir);
      std::ifstream in(out.dir + "/summary.json");
      s = nlohmann::json::parse(in);
    }
    std::string rel;
    if (s.contains("final_val_rel")) rel = fmt::format(" ({:.2f}% of the target variance)", 100.0 * s["final_val_rel"].get<double>());
    if (s["status"] == "completed") {
      fmt::print("done: val_loss {:.6g}{}, {} steps in {:.1f}s, {:.0f} tokens/s, {} params -> {}\n",
                 s["final_val_loss"].get<double>(), rel, s["steps"].get<int64_t>(), s["wall_s"].get<double>(),
                 s["tokens_per_s"].get<double>(), s["params_total"].get<int64_t>(), out.dir);
    } else {
      fmt::print("diverged at step {}: {} -> {}\n", s["diverged_step"].get<int64_t>(),
                 s["diverged_reason"].get<std::string>(), out.dir);
    }
    return 0;
  };
}

}  // namespace attnlab::cli
