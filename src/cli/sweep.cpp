// attnlab sweep SPEC.toml [--scale quick|full] [-j N] [--out DIR] [--shard i/N]
// attnlab merge OUT_DIR IN_DIR...
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fmt/core.h>

#include "cli/cli.h"
#include "core/dist.h"
#include "core/error.h"
#include "sweep/runner.h"
#include "sweep/spec.h"
#include "sweep/store.h"

namespace attnlab::cli {

namespace {
std::string eta_text(double s) {
  if (!std::isfinite(s)) return "?";
  if (s >= 3600) return fmt::format("{:.1f}h", s / 3600);
  const long t = std::lround(s);  // whole seconds first: 119.6 s is 2m00s, not 1m60s
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

// Makes `dst` a copy of the run directory `src` (none if src has none): copied beside it
// first, then put in place, so that an interrupted merge leaves the old or the new, whole.
void replace_run_dir(const std::filesystem::path& src, const std::filesystem::path& dst) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path tmp = dst.string() + ".merging";
  fs::remove_all(tmp, ec);
  if (fs::is_directory(src, ec)) {
    fs::create_directories(dst.parent_path(), ec);
    fs::copy(src, tmp, fs::copy_options::recursive, ec);
    if (ec) {
      fs::remove_all(tmp);
      throw UserError(dst.string() + ": cannot copy the run directory from " + src.string() + ": " + ec.message());
    }
  }
  fs::remove_all(dst, ec);
  if (fs::exists(tmp)) fs::rename(tmp, dst);
}
}  // namespace

std::function<void(const SweepProgress&)> sweep_progress_printer(const std::string& name) {
  const bool tty = isatty(fileno(stderr));
  auto last_done = std::make_shared<int>(-1);
  return [tty, name, last_done](const SweepProgress& p) {
    if (!tty && p.done == *last_done) return;  // in a log: one line per finished run
    *last_done = p.done;
    const std::string line = fmt::format("{}: {}/{} runs done, {} running{}{}, {} elapsed, ETA {}{}", name, p.done, p.total,
                                         p.running, p.diverged ? fmt::format(", {} diverged", p.diverged) : "",
                                         p.failed ? fmt::format(", {} failed", p.failed) : "", eta_text(p.elapsed_s),
                                         eta_text(p.eta_s), p.best.empty() ? "" : " | best " + p.best);
    if (tty) fmt::print(stderr, "\r\033[K{}", line);
    else fmt::print(stderr, "{}\n", line);
  };
}

void print_sweep_result(const std::string& out, const SweepResult& r) {
  if (isatty(fileno(stderr))) fmt::print(stderr, "\n");
  fmt::print("sweep: {} runs: {} completed, {} diverged, {} failed{}{}{} in {:.1f}s{} -> {}/runs.db\n", r.total, r.completed,
             r.diverged, r.failed, r.skipped ? fmt::format(", {} held by another sweep", r.skipped) : "",
             r.discarded ? fmt::format(", {} changed stored run(s) discarded", r.discarded) : "",
             r.retried ? fmt::format(", {} failed run(s) retried", r.retried) : "", r.wall_s,
             r.ranks > 1 ? fmt::format(" over {} MPI ranks", r.ranks) : "", out);
}

std::function<int()> add_sweep(CLI::App& app) {
  struct Args {
    std::string spec, scale, out, shard;
    int jobs = 0;
    bool rerun_changed = false, list = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("sweep", "Run every point of an experiment spec, in parallel, resumably");
  sub->add_option("spec", a->spec, "Experiment spec (TOML); see README, 'Experiment specs'")->required();
  sub->add_option("--scale", a->scale, "Scale: quick | full (the spec's [scale.NAME])");
  sub->add_option("-j,--jobs", a->jobs, "Runs at once (default: one per core); threads per run = cores / jobs")
      ->check(CLI::Range(1, 1024));
  sub->add_option("--out", a->out, "Sweep directory (default: sweeps/<experiment name>)");
  sub->add_option("--shard", a->shard, "Run only part i of N (i/N, 0-based), e.g. for Slurm job arrays");
  sub->add_flag("--rerun-changed", a->rerun_changed,
                "If the spec now gives some stored runs another resolved config (or drops them), discard and rerun "
                "exactly those runs (without it, that is an error naming the first changed key)");
  sub->add_flag("--list", a->list,
                "Check every run's config and list the run ids (of this --shard) on stdout, one a line, and their count on "
                "stderr; run nothing, write nothing (e.g. to size a Slurm job array)");
  sub->footer("Example: attnlab sweep experiments/p3_e1_width.toml --scale quick -j 2 --out sweeps/e1\n"
              "         mpirun -np 4 attnlab sweep experiments/p3_e4_ar.toml --scale full --out sweeps/e4\n"
              "         attnlab sweep experiments/p3_e4_ar.toml --scale full --list | wc -l");
  return [a]() {
    SweepOptions o;
    o.spec_path = a->spec;
    o.scale = a->scale;
    o.jobs = a->jobs;
    o.rerun_changed = a->rerun_changed;
    o.list_only = a->list;
    if (!a->shard.empty()) {
      int i = -1, n = -1;
      char tail = 0;
      if (std::sscanf(a->shard.c_str(), "%d/%d%c", &i, &n, &tail) != 2 || n < 1 || i < 0 || i >= n)
        throw UserError("--shard: '" + a->shard + "' is not i/N with 0 <= i < N (for example 0/4)");
      o.shard_i = i;
      o.shard_n = n;
    }
    const std::string name = std::filesystem::path(a->spec).stem().string();
    o.out = a->out.empty() ? "sweeps/" + name : a->out;
    const bool lead = dist::rank() == 0;  // under mpirun: rank 0 owns the store and speaks
    if (o.list_only) {
      const auto r = run_sweep(o, nullptr);
      if (!lead) return 0;
      for (const auto& id : r.listed) fmt::print("{}\n", id);
      std::fflush(stdout);
      fmt::print(stderr, "{}: {} runs{}{}\n", name, r.total, o.scale.empty() ? "" : " at scale " + o.scale,
                 o.shard_n > 1 ? fmt::format(" in shard {}/{}", o.shard_i, o.shard_n) : "");
      return 0;
    }
    const auto r = run_sweep(o, lead ? sweep_progress_printer(name) : nullptr);
    if (lead) print_sweep_result(o.out, r);
    return 0;
  };
}

std::function<int()> add_merge(CLI::App& app) {
  struct Args {
    std::string out;
    std::vector<std::string> inputs;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("merge", "Combine the stores of sweep shards into one sweep directory");
  sub->add_option("out", a->out, "Output sweep directory (created if needed)")->required();
  sub->add_option("inputs", a->inputs, "Sweep directories to merge")->required();
  sub->footer("Example: attnlab merge sweeps/e1 sweeps/e1-shard0 sweeps/e1-shard1");
  return [a]() {
    namespace fs = std::filesystem;
    fs::create_directories(a->out);
    Store out((fs::path(a->out) / "runs.db").string());
    size_t n = 0;
    for (const auto& in : a->inputs) {
      const fs::path db = fs::path(in) / "runs.db";
      if (!fs::exists(db)) throw UserError(db.string() + ": no such result store");
      const auto taken = out.merge_from(db.string());
      n += taken.size();
      // The directories of exactly the runs the store took from this input, so that reports
      // link what the store records (a run failed in OUT and completed here gets this one's).
      for (const auto& id : taken) replace_run_dir(fs::path(in) / "runs" / run_dir_name(id), fs::path(a->out) / "runs" / run_dir_name(id));
    }
    fmt::print("merge: {} runs added -> {}/runs.db\n", n, a->out);
    return 0;
  };
}

}  // namespace attnlab::cli
