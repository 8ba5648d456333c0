// attnlab train CONFIG.toml [key=value ...] [--out DIR]
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <fmt/core.h>

#include "analysis/compress.h"
#include "cli/cli.h"
#include "io/config.h"
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

}  // namespace

std::function<int()> add_train(CLI::App& app) {
  struct Args {
    std::string config, out, scale;
    std::vector<std::string> overrides;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("train", "Train one model on one task from a TOML config");
  sub->add_option("config", a->config, "Run config (TOML); see README, 'Config reference'")->required();
  sub->add_option("overrides", a->overrides, "Overrides key=value, e.g. model.heads=[8,4] train.lr=3e-4");
  sub->add_option("--out", a->out, "Output directory (default: runs/<config name>)");
  sub->add_option("--scale", a->scale, "For an experiment spec: apply its [scale.NAME] settings (quick | full)");
  sub->footer(
      "Writes DIR/config.toml (resolved), DIR/metrics.jsonl, DIR/summary.json, DIR/model.safetensors.\n"
      "Example: attnlab train experiments/sparse_memory.toml model.heads=8 --out runs/h8");
  return [a]() {
    const RunConfig cfg = load_run_config(a->config, a->overrides, a->scale);
    TrainOutput out;
    out.dir = a->out.empty() ? "runs/" + std::filesystem::path(a->config).stem().string() : a->out;
    out.resolved_config = resolved_toml(cfg);
    out.on_progress = progress_printer();
    auto s = train_run(cfg, out);
    if (!cfg.train.compress_ranks.empty() && s["status"] == "completed") {  // paper 1: the compression curve
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
