// attnlab report DIR... [-o OUT]
// attnlab reproduce [--scale quick|full] [--only p1,p2,p3] [-j N] [--out DIR]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fmt/core.h>
#include <sstream>

#include "cli/cli.h"
#include "core/dist.h"
#include "core/error.h"
#include "report/report.h"
#include "sweep/runner.h"
#include "sweep/spec.h"

namespace attnlab::cli {

namespace fs = std::filesystem;

std::function<void(const SweepProgress&)> sweep_progress_printer(const std::string& name);
void print_sweep_result(const std::string& out, const SweepResult& r);

std::function<int()> add_report(CLI::App& app) {
  struct Args {
    std::vector<std::string> inputs;
    std::string out = "report";
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("report", "Figures, claims and runs of sweeps as one offline HTML page");
  sub->add_option("dirs", a->inputs, "Sweep directories (with runs.db), or directories of them")->required();
  sub->add_option("-o,--out", a->out, "Report directory (default: report): index.html, claims.json, figures");
  sub->footer("Example: attnlab report sweeps/e1 sweeps/e4 -o report && open report/index.html");
  return [a]() {
    const auto claims = write_report(a->inputs, a->out);
    fmt::print("{}report: {}/index.html, {}/claims.json\n", claims_table(claims), a->out, a->out);
    return 0;
  };
}

// The built-in experiment specs: ./experiments, next to the binary, or the source tree.
fs::path experiments_dir() {
  std::vector<fs::path> candidates = {"experiments"};
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    candidates.push_back(exe.parent_path() / "experiments");
    candidates.push_back(exe.parent_path().parent_path() / "experiments");
  }
  candidates.push_back(fs::path(ATTNLAB_SOURCE_DIR) / "experiments");
  for (const auto& c : candidates)
    if (fs::is_directory(c)) return c;
  throw UserError("experiments: cannot find the built-in experiment specs (looked in ./experiments, next to the binary and in " +
                  std::string(ATTNLAB_SOURCE_DIR) + ")");
}

std::function<int()> add_reproduce(CLI::App& app) {
  struct Args {
    std::string scale = "quick", only, out = "reproduce";
    int jobs = 0;
    bool rerun_changed = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("reproduce", "Run every built-in experiment (experiments/p*_*.toml), then write the report");
  sub->add_option("--scale", a->scale, "quick (default; minutes) or full (the papers' settings; hours)")
      ->check(CLI::IsMember({"quick", "full"}));
  sub->add_option("--only", a->only, "Results to run: comma-separated p1, p2, p3 (default: all)");
  sub->add_option("-j,--jobs", a->jobs, "Runs at once (default: one per core)")->check(CLI::Range(1, 1024));
  sub->add_option("--out", a->out, "Output directory (default: reproduce): one sweep directory per experiment and report/");
  sub->add_flag("--rerun-changed", a->rerun_changed,
                "Stored runs whose resolved config the specs now change (or no longer have) are discarded and rerun "
                "(without it, that is an error naming the first changed key)");
  sub->footer("Example: attnlab reproduce --scale quick --only p3 --out runs/reproduce");
  return [a]() {
    std::vector<std::string> only;
    if (!a->only.empty()) {
      std::stringstream ss(a->only);
      for (std::string p; std::getline(ss, p, ',');) {
        if (p != "p1" && p != "p2" && p != "p3") throw UserError("--only: '" + p + "' is not one of p1, p2, p3");
        only.push_back(p);
      }
    }
    const fs::path dir = experiments_dir();
    std::vector<fs::path> specs;
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string n = e.path().filename().string();
      if (e.path().extension() == ".toml" && n.size() > 3 && n[0] == 'p' && (n[1] >= '1' && n[1] <= '3') && n[2] == '_')
        if (only.empty() || std::find(only.begin(), only.end(), n.substr(0, 2)) != only.end()) specs.push_back(e.path());
    }
    std::sort(specs.begin(), specs.end());
    if (specs.empty()) throw UserError(dir.string() + ": no experiment specs p1_*.toml, p2_*.toml, p3_*.toml" +
                                       (only.empty() ? "" : " for --only " + a->only));
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::string> sweep_dirs;
    for (const auto& spec : specs) {
      SweepOptions o;
      o.spec_path = spec.string();
      o.scale = a->scale;
      o.jobs = a->jobs;
      o.rerun_changed = a->rerun_changed;
      const std::string name = spec.stem().string();
      o.out = (fs::path(a->out) / name).string();
      const bool lead = dist::rank() == 0;  // under mpirun every sweep is spread over the ranks
      const auto r = run_sweep(o, lead ? sweep_progress_printer(name) : nullptr);
      if (lead) print_sweep_result(o.out, r);
      sweep_dirs.push_back(o.out);
    }
    if (dist::rank() > 0) return 0;  // rank 0 writes the report
    const std::string report = (fs::path(a->out) / "report").string();
    const auto claims = write_report(sweep_dirs, report);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print("\n{}\nreproduce: {} experiments at scale {} in {:.0f}s; report: {}/index.html\n", claims_table(claims),
               specs.size(), a->scale, wall, report);
    return 0;
  };
}

}  // namespace attnlab::cli
