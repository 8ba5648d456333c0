// Convergence (issue 24, train/convergence.h): final_slope is the validation loss's relative
// change per tenth of the run over its last 20% of steps; converged = final_slope >= -1%.
// Against curves whose slope is known, and in a real run's summary.json.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_run.h"
#include "train/convergence.h"

using namespace attnlab;

namespace {
// loss(step) = f(step) at every 100th step of 1000.
std::vector<std::pair<int64_t, double>> curve(double (*f)(double)) {
  std::vector<std::pair<int64_t, double>> v;
  for (int s = 100; s <= 1000; s += 100) v.emplace_back(s, f(s));
  return v;
}
}  // namespace

TEST(Convergence, TheFinalSlopeIsTheRelativeChangePerTenthOfTheRun) {
  // Linear 2 - 0.001 s: over steps 800..1000 the mean is 1.1, the change per 100 steps -0.1.
  const auto falling = convergence_of(curve([](double s) { return 2.0 - 0.001 * s; }), 1000);
  EXPECT_NEAR(falling.final_slope, -0.1 / 1.1, 1e-12);
  EXPECT_FALSE(falling.converged);
  const auto flat = convergence_of(curve([](double s) { return 0.5 + 1e-7 * std::sin(s); }), 1000);
  EXPECT_NEAR(flat.final_slope, 0.0, 1e-5);
  EXPECT_TRUE(flat.converged);
  // Rising at the end (over-fitting): more steps would not lower its minimum.
  EXPECT_TRUE(convergence_of(curve([](double s) { return 1.0 + 0.001 * s; }), 1000).converged);
  // Falling by 0.5% per tenth: within the 1% tolerance.
  EXPECT_TRUE(convergence_of(curve([](double s) { return 1.0 - 0.00005 * s; }), 1000).converged);
  // Two evaluations only (eval_every = steps / 2): their slope.
  const auto two = convergence_of({{500, 1.0}, {1000, 0.8}}, 1000);
  EXPECT_NEAR(two.final_slope, -0.2 / 5 / 0.9, 1e-12);
  EXPECT_FALSE(two.converged);
  EXPECT_TRUE(std::isnan(convergence_of({{1000, 0.8}}, 1000).final_slope));
  EXPECT_FALSE(convergence_of({{1000, 0.8}}, 1000).converged);
}

TEST(Convergence, ARunWritesItsFinalSlopeFromItsMetrics) {
  const std::filesystem::path d = cli_test::scratch_dir("convergence");
  const std::string cfg = (d / "c.toml").string(), out = (d / "run").string();
  std::ofstream(cfg) << "[task]\nkind = \"sparse_memory\"\nseq_len = 8\nd_in = 2\nlags = [1]\nn_train = 64\nn_val = 16\n"
                        "[model]\nd_model = 8\nlayers = 1\nheads = 1\nhead_dim = 8\nffn = 8\n"
                        "[train]\nsteps = 100\nbatch = 8\nlr = 3e-3\neval_every = 10\nthreads = 1\n";
  ASSERT_EQ(cli_test::run("train " + cfg + " --out " + out).status, 0);
  std::ifstream sf(out + "/summary.json");
  const auto s = nlohmann::json::parse(sf);
  const Convergence want = convergence_of_metrics(out + "/metrics.jsonl", 100);
  ASSERT_TRUE(s.contains("final_slope") && s["final_slope"].is_number());
  EXPECT_DOUBLE_EQ(s["final_slope"].get<double>(), want.final_slope);
  EXPECT_EQ(s["converged"].get<bool>(), want.converged);
}
