// attnlab errors CONFIG [key=value ...] [--scale S] [--widths 8,16,...] [--inputs N] [--json FILE]
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "train/error_probe.h"
#include "cli/cli.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/config.h"
#include "train/trainer.h"

namespace attnlab::cli {

std::function<int()> add_errors(CLI::App& app) {
  struct Args {
    std::string config, scale, json;
    std::vector<std::string> overrides;
    std::vector<int> widths = {8, 16, 32, 64, 128, 256};
    int inputs = 0;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("errors", "Paper 3's approximation (E2) and linearization (E3) errors against width m");
  sub->add_option("config", a->config, "Config or experiment spec (shallow_attention on teacher_student_ntk)")->required();
  sub->add_option("overrides", a->overrides, "Overrides key=value");
  sub->add_option("--scale", a->scale, "For an experiment spec: apply [scale.NAME]");
  sub->add_option("--widths", a->widths, "Widths m (even)")->delimiter(',')->check(CLI::PositiveNumber);
  sub->add_option("--inputs", a->inputs, "Inputs the errors are taken over: the first N training, then validation inputs (default: all n)")->check(CLI::Range(1, 1000000));
  sub->add_option("--json", a->json, "Also write the table as JSON to FILE");
  sub->footer("Example: attnlab errors experiments/p3_e1_width.toml --widths 8,32,128 --inputs 100");
  return [a]() {
    const RunConfig cfg = load_run_config(a->config, a->overrides, a->scale);
    configure_threads(cfg.train.threads);
    for (int m : a->widths)
      if (m % 2) throw UserError("--widths: " + std::to_string(m) + " is odd; symmetric initialization needs even m");
    const auto pts = p3_error_decomposition(cfg, a->widths, a->inputs);
    fmt::print("{:>6} {:>14} {:>14} {:>14} {:>14}\n", "m", "approx_max", "approx_mean", "lin_max", "lin_mean");
    std::vector<double> ms, am, lm;
    nlohmann::ordered_json j = nlohmann::ordered_json::array();
    for (const auto& p : pts) {
      fmt::print("{:>6} {:>14.6g} {:>14.6g} {:>14.6g} {:>14.6g}\n", p.m, p.approx_max, p.approx_mean, p.lin_max, p.lin_mean);
      ms.push_back(p.m); am.push_back(p.approx_mean); lm.push_back(p.lin_mean);
      j.push_back({{"m", p.m}, {"approx_max", p.approx_max}, {"approx_mean", p.approx_mean}, {"lin_max", p.lin_max},
                   {"lin_mean", p.lin_mean}});
    }
    const double sa = loglog_slope(ms, am), sl = loglog_slope(ms, lm);
    fmt::print("log-log slope against m: approximation {:.3f}, linearization {:.3f}\n", sa, sl);
    if (!a->json.empty())
      write_file_atomic(a->json, nlohmann::ordered_json{{"points", j}, {"slope_approx_mean", sa}, {"slope_lin_mean", sl}}.dump(2) + "\n");
    return 0;
  };
}

}  // namespace attnlab::cli
