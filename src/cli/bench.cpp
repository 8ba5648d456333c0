// attnlab bench [--compare-pytorch] [--scaling] [--json FILE] [--only a,b] [--steps N] [--threads N] [--profile]
#include <fmt/core.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli/cli.h"
#include "core/dist.h"
#include "core/process.h"
#include "core/error.h"
#include "core/profile.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "models/model.h"
#include "train/bench.h"
#include "train/trainer.h"

namespace attnlab::cli {

namespace fs = std::filesystem;

namespace {

// The stdout of a Python tool (stderr dropped), started without a shell: its paths (the
// source tree, TMPDIR) are arguments, never shell text.
std::string run_capture(const std::vector<std::string>& argv) {
  ProcessOptions o;
  o.capture_stdout = true;
  return run_process(argv, o).out;
}

fs::path tools_dir() {
  for (const fs::path& c : {fs::path("tools"), fs::path(ATTNLAB_SOURCE_DIR) / "tools"})
    if (fs::exists(c / "torch_speed.py")) return c;
  throw UserError("--compare-pytorch: cannot find tools/torch_speed.py (run from the repository or its build)");
}

// PyTorch tokens/s of the same model (same initialization: the weights are loaded).
double pytorch_tokens_per_s(const BenchCase& c, int steps, int threads) {
  const fs::path tools = tools_dir();
  if (c.cfg.model.kind == "shallow_attention") {
    const auto j = nlohmann::json::parse(run_capture(
        {"/usr/bin/python3", (tools / "torch_p3.py").string(), "speed", "shallow", "--n", std::to_string(c.cfg.train.batch), "--d",
         std::to_string(c.cfg.model.d_in), "--T", std::to_string(c.cfg.task.seq_len), "--m", std::to_string(c.cfg.model.width),
         "--threads", std::to_string(threads)}));
    return double(c.cfg.train.batch) * c.cfg.task.seq_len / (j["ms_per_step"].get<double>() / 1000.0);
  }
  const fs::path dir = fs::temp_directory_path() / ("attnlab_bench_" + c.name + "_" + std::to_string(getpid()));
  fs::create_directories(dir);
  auto model = make_model<float>(c.cfg.model, 1);
  model->init(1);  // no OpenMP in init: safe before the next fork
  save_checkpoint((dir / "model.safetensors").string(), model->arena, resolved_toml(c.cfg));
  const std::string out = run_capture({"/usr/bin/python3", (tools / "torch_speed.py").string(), dir.string(), "--steps",
                                       std::to_string(steps), "--threads", std::to_string(threads)});
  fs::remove_all(dir);
  return nlohmann::json::parse(out)["tokens_per_s"].get<double>();
}

}  // namespace

std::function<int()> add_bench(CLI::App& app) {
  struct Args {
    bool pytorch = false, scaling = false;
    std::string json, only;
    int steps = 10, threads = 0;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("bench", "Training speed of the reference models (and of PyTorch on the same models)");
  sub->add_flag("--compare-pytorch", a->pytorch, "Also time the same models in PyTorch (/usr/bin/python3, tuned allocator)");
  sub->add_option("--json", a->json, "Write one object per model to FILE");
  sub->add_option("--only", a->only, "Comma-separated models: tiny, small, medium, long, hetero, shallow");
  sub->add_option("--steps", a->steps, "Timed steps per model (median reported)")->check(CLI::Range(1, 100000));
  sub->add_option("--threads", a->threads, "Threads (default: every core)")->check(CLI::Range(1, 1024));
  sub->add_flag("--scaling", a->scaling,
                "Also time every model on 1 thread, alternating 3 rounds of 1 and N threads (medians), and print the speedup");
  sub->add_flag("--profile", prof::enabled, "Print where each model's training step spends its wall time (to stderr)");
  sub->footer("Example: attnlab bench --compare-pytorch --json bench.json");
  return [a]() {
    auto cases = reference_benchmarks();
    if (!a->only.empty()) {
      std::vector<BenchCase> keep;
      std::stringstream ss(a->only);
      for (std::string n; std::getline(ss, n, ',');) {
        auto it = std::find_if(cases.begin(), cases.end(), [&](const BenchCase& c) { return c.name == n; });
        if (it == cases.end()) throw UserError("--only: '" + n + "' is not a reference model (tiny, small, medium, long, hetero, shallow)");
        keep.push_back(*it);
      }
      cases = keep;
    }
    // No OpenMP in this process: the benchmarks run in forked children (see train/bench.h).
    const int threads = a->threads > 0 ? a->threads : dist::usable_cores();
    const MachinePeak mp = measure_machine_peak(threads);
    const double peak = mp.fma_gflops;
    fmt::print("FMA peak ({}, {}-bit vectors, {} threads): {:.0f} GFLOP/s; SGEMM n=2048 through attnlab's GEMM: {:.0f} GFLOP/s ({:.0f}% of the FMA peak)\n",
               mp.isa, mp.vector_bits, threads, peak, mp.sgemm_gflops, 100 * mp.sgemm_gflops / peak);
    fmt::print("peak = each model's GFLOP/s as a fraction of the FMA peak\n");
    fmt::print("{:<8} {:>12} {:>10} {:>9} {:>7} {:>9}{}{}\n", "model", "tokens/s", "ms/step", "GFLOP/s", "peak", "RSS MB",
               a->scaling ? fmt::format(" {:>12} {:>8}", "1-thread", "threads") : "",
               a->pytorch ? fmt::format(" {:>12} {:>8}", "pytorch", "speedup") : "");
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    double log_speedup = 0;
    int n_speedup = 0;
    for (const auto& c : cases) {
      BenchResult r;
      std::string extra;
      double one_thread_tps = 0;
      if (a->scaling) {
        // The machine's noise drifts over seconds: alternate the two thread counts and keep
        // each one's median round, so that the ratio compares like with like.
        std::vector<BenchResult> rn, r1;
        for (int round = 0; round < 3; ++round) {
          r1.push_back(run_benchmark(c, 3, a->steps, 1));
          rn.push_back(run_benchmark(c, 3, a->steps, threads));
        }
        auto median = [](std::vector<BenchResult> v) {
          std::sort(v.begin(), v.end(), [](const BenchResult& x, const BenchResult& y) { return x.ms_per_step < y.ms_per_step; });
          return v[v.size() / 2];
        };
        r = median(rn);
        one_thread_tps = median(r1).tokens_per_s;
        extra = fmt::format(" {:>12.0f} {:>7.2f}x", one_thread_tps, r.tokens_per_s / one_thread_tps);
      } else {
        r = run_benchmark(c, 3, a->steps, threads);
      }
      r.peak_fraction = r.gflops / peak;
      nlohmann::ordered_json j{{"model", r.model}, {"tokens_per_s", r.tokens_per_s}, {"ms_per_step", r.ms_per_step},
                               {"gflops", r.gflops}, {"peak_fraction", r.peak_fraction}, {"peak_rss_mb", r.peak_rss_mb},
                               {"threads", threads}, {"fma_peak_gflops", peak}, {"sgemm_gflops", mp.sgemm_gflops},
                               {"vector_bits", mp.vector_bits}, {"isa", mp.isa}};
      if (a->scaling) {
        j["tokens_per_s_1thread"] = one_thread_tps;
        j["thread_speedup"] = r.tokens_per_s / one_thread_tps;
      }
      if (a->pytorch) {
        const double pt = pytorch_tokens_per_s(c, a->steps, threads);
        j["pytorch_tokens_per_s"] = pt;
        j["speedup"] = r.tokens_per_s / pt;
        log_speedup += std::log(r.tokens_per_s / pt);
        ++n_speedup;
        extra += fmt::format(" {:>12.0f} {:>7.2f}x", pt, r.tokens_per_s / pt);
      }
      fmt::print("{:<8} {:>12.0f} {:>10.2f} {:>9.1f} {:>6.0f}% {:>9.0f}{}\n", r.model, r.tokens_per_s, r.ms_per_step, r.gflops,
                 100 * r.peak_fraction, r.peak_rss_mb, extra);
      std::fflush(stdout);
      out.push_back(j);
    }
    if (n_speedup > 0) fmt::print("geometric mean speedup over PyTorch: {:.2f}x\n", std::exp(log_speedup / n_speedup));
    if (!a->json.empty()) write_file_atomic(a->json, out.dump(2) + "\n");
    return 0;
  };
}

}  // namespace attnlab::cli
