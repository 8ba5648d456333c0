// attnlab plan: the rules (M heads, the saturation point d*(T), shares over layers), the JSON
// contract, --calibrate's pilots, and --validate's protocol recomputed from its runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "analysis/planner.h"
#include "cli_run.h"
#include "core/error.h"

using namespace attnlab;
namespace fs = std::filesystem;

PlanRequest req(int64_t D, int L, int T, int M, const std::string& profile = "uniform", int key_dim = 0) {
  PlanRequest r;
  r.budget = D;
  r.layers = L;
  r.seq_len = T;
  r.memories = M;
  r.profile = profile;
  r.key_dim = key_dim;
  return r;
}

// Rule 2's d*(T): the smallest power of two >= sqrt(T), at least 4 (p1_e2b: 4, 8, 16 at T = 16,
// 64, 256), at least 2K with a key dimension K.
TEST(Plan, SaturationPointFollowsTheMeasuredBend) {
  const std::vector<std::pair<int, int>> cases = {{1, 4}, {16, 4}, {17, 8}, {64, 8}, {65, 16}, {128, 16}, {256, 16}, {257, 32}, {1024, 32}};
  for (const auto& [T, d] : cases) EXPECT_EQ(measured_saturation(T, 0), d) << "T = " << T;
  std::string why;
  EXPECT_EQ(measured_saturation(64, 16, &why), 32);
  EXPECT_NE(why.find("2K = 32 for key dimension K = 16 (p1_e2c"), std::string::npos) << why;
  EXPECT_EQ(measured_saturation(1024, 4, &why), 32);
  EXPECT_NE(why.find("T beyond 256 is extrapolated"), std::string::npos) << why;
  EXPECT_NE(why.find("p1_e2b at full scale"), std::string::npos) << why;
}

TEST(Plan, SpendsAtMostTheBudgetWithMHeadsOfTheSaturationDimension) {
  for (int64_t D : {24, 100, 384, 1000, 5000})
    for (int L : {1, 2, 6})
      for (int M : {1, 3, 4})
        for (int T : {16, 64, 512})
          for (const char* profile : {"uniform", "front"}) {
            if (D < 3 * L * M) continue;
            SCOPED_TRACE(std::to_string(D) + " " + std::to_string(L) + " " + std::to_string(M) + " " + std::to_string(T) + " " + profile);
            const Plan p = plan_allocation(req(D, L, T, M, profile));
            ASSERT_EQ(p.layers.size(), size_t(L));
            const int ds = measured_saturation(T, 0);
            int64_t spent = 0;
            for (size_t l = 0; l < p.layers.size(); ++l) {
              const auto& lp = p.layers[l];
              spent += int64_t(lp.heads) * lp.head_dim;
              EXPECT_EQ(lp.heads, M);
              EXPECT_GE(lp.head_dim, 1);
              EXPECT_LE(lp.head_dim, ds);
              EXPECT_NE(lp.reason.find("p1_e2b"), std::string::npos) << lp.reason;
              EXPECT_NE(lp.reason.find("p1_e3"), std::string::npos) << lp.reason;
              if (l > 0)  // shares never rise from front to back
                EXPECT_LE(int64_t(lp.heads) * lp.head_dim, int64_t(p.layers[l - 1].heads) * p.layers[l - 1].head_dim);
            }
            EXPECT_NE(p.layers[0].reason.find("p1_e1 at full scale"), std::string::npos) << p.layers[0].reason;
            EXPECT_EQ(spent, p.spent);
            EXPECT_LE(spent, D);
          }
  // Front-loaded 6 layers: shares 3 : 2.6 : 2.2 : 1.8 : 1.4 : 1 of D = 384 (96 ... 32); at T = 1024
  // (d* = 32) four heads spend them whole: 4 x 24 first, 4 x 8 last.
  const Plan p = plan_allocation(req(384, 6, 1024, 4, "front"));
  EXPECT_EQ(p.layers[0].heads * p.layers[0].head_dim, 96);
  EXPECT_EQ(p.layers[5].heads * p.layers[5].head_dim, 32);
  EXPECT_THROW(plan_allocation(req(10, 6, 64, 4, "front")), UserError);
  EXPECT_THROW(plan_allocation(req(384, 6, 64, 4, "back")), UserError);
  EXPECT_THROW(plan_allocation(req(384, 6, 64, 4, "uniform", -1)), UserError);
}

// --seq-len changes the plan where the measurements say d* moves: at D = 384 over 6 layers
// with 4 memories, T = 32 stops at 4 x 8 and leaves half the budget; T = 128 spends it all
// (4 x 16 = d*(128)); a key dimension of 16 raises d* to 32 (more than the share allows).
TEST(Plan, SequenceLengthChangesThePlan) {
  const Plan a = plan_allocation(req(384, 6, 32, 4)), b = plan_allocation(req(384, 6, 128, 4));
  EXPECT_EQ(a.layers[2].head_dim, 8);
  EXPECT_EQ(a.spent, 192);
  EXPECT_NE(a.layers[2].reason.find("the rest of the share (32) left unspent"), std::string::npos) << a.layers[2].reason;
  EXPECT_EQ(b.layers[2].head_dim, 16);
  EXPECT_EQ(b.spent, 384);
  EXPECT_NE(b.layers[2].reason.find("what the share allows"), std::string::npos) << b.layers[2].reason;
  const Plan k = plan_allocation(req(768, 6, 32, 4, "uniform", 16));
  EXPECT_EQ(k.layers[0].head_dim, 32);
  // A saturation point above --max-head-dim is capped there.
  PlanRequest r = req(4096, 1, 4096, 1);
  r.d_max = 32;
  const Plan c = plan_allocation(r);
  EXPECT_EQ(c.layers[0].head_dim, 32);
  EXPECT_EQ(c.layers[0].heads, 1);
  EXPECT_NE(c.layers[0].reason.find("capped at --max-head-dim 32"), std::string::npos) << c.layers[0].reason;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// --validate: the protocol's arms (the plan, the conventional allocation of what it spends, the
// grid of uniform allocations; equal allocations run once), 8 seeds, and its numbers recomputed
// here from the runs' own summaries: the arms' means, the paired improvement over the baseline,
// and the regret (the plan's mean over the grid's best mean, minus 1).
TEST(Plan, ValidateRunsTheProtocolAndItsNumbersAreTheRunsOwn) {
  const fs::path d = cli_test::scratch_dir("plan_validate");
  { std::ofstream(d / "c.toml") << "seed = 1\n[task]\nkind = \"ngram_noise\"\nseq_len = 16\nn_gram = 2\nd_in = 2\nn_train = 0\nn_val = 32\n"
                                   "[model]\nd_model = 16\nffn = 16\n[train]\nsteps = 5\nbatch = 8\neval_every = 5\nthreads = 1\n"; }
  const auto r = cli_test::run("plan --budget 48 --layers 2 --seq-len 16 --memories 2 --validate " + (d / "c.toml").string() +
                               " --out " + (d / "v").string() + " --json " + (d / "p.json").string());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(slurp(d / "p.json"));
  EXPECT_EQ(j["budget"], 48);
  EXPECT_EQ(j["seq_len"], 16);
  ASSERT_EQ(j["layers"].size(), 2u);
  EXPECT_EQ(j["layers"][0]["heads"], 2);
  EXPECT_EQ(j["layers"][0]["head_dim"], 4);  // d*(16) = 4; the share's other 16 unspent
  EXPECT_EQ(j["spent"], 16);
  const auto& v = j["validate"];
  EXPECT_EQ(v["seeds"], (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8}));
  // Arms: plan 2x4, baseline 1x8 (the spent 8 per layer in one head), grid 1x24, 2x12, 4x6.
  std::map<std::string, std::string> dims;
  for (const auto& a : v["arms"]) dims[a["names"][0].get<std::string>()] = a["heads"].get<std::string>() + a["head_dim"].get<std::string>();
  EXPECT_EQ(dims, (std::map<std::string, std::string>{{"plan", "[2, 2][4, 4]"}, {"baseline", "[1, 1][8, 8]"},
                                                      {"grid H=1", "[1, 1][24, 24]"}, {"grid H=2", "[2, 2][12, 12]"},
                                                      {"grid H=4", "[4, 4][6, 6]"}}));
  // Per arm and seed, the metric from the runs' own directories.
  std::map<std::string, std::map<int, double>> y;
  for (const auto& e : fs::directory_iterator(d / "v" / "runs")) {
    const auto s = nlohmann::json::parse(slurp(e.path() / "summary.json"));
    const std::string cfg = slurp(e.path() / "config.toml");
    const auto h = cfg.find("heads = [ "), hd = cfg.find("head_dim = [ "), sd = cfg.find("\nseed = ");
    ASSERT_NE(h, std::string::npos);
    const std::string key = cfg.substr(h + 10, cfg.find(' ', h + 10) - h - 10) + "x" + cfg.substr(hd + 13, cfg.find(' ', hd + 13) - hd - 13);
    y[key][std::stoi(cfg.substr(sd + 8))] = s["final_val_loss"].get<double>();
  }
  ASSERT_EQ(y.size(), 5u);
  auto mean = [&](const std::string& k) {
    double m = 0;
    for (const auto& [seed, val] : y[k]) m += val / 8;
    EXPECT_EQ(y[k].size(), 8u) << k;
    return m;
  };
  EXPECT_NEAR(v["plan"].get<double>(), mean("2,x4,"), 1e-12);
  EXPECT_NEAR(v["baseline"].get<double>(), mean("1,x8,"), 1e-12);
  double imp = 0;
  for (int s = 1; s <= 8; ++s) imp += (y["1,x8,"][s] - y["2,x4,"][s]) / y["1,x8,"][s] / 8;
  EXPECT_NEAR(v["improvement"]["measured"].get<double>(), imp, 1e-12);
  const double g1 = mean("1,x24,"), g2 = mean("2,x12,"), g4 = mean("4,x6,"), best = std::min({g1, g2, g4});
  EXPECT_NEAR(v["grid_best_mean"].get<double>(), best, 1e-12);
  EXPECT_NEAR(v["regret"]["measured"].get<double>(), mean("2,x4,") / best - 1, 1e-12);
  EXPECT_LE(v["regret"]["ci_low"].get<double>(), v["regret"]["measured"].get<double>());
  EXPECT_GE(v["regret"]["ci_high"].get<double>(), v["regret"]["measured"].get<double>());
  EXPECT_EQ(v["useful"].get<bool>(), v["regret"]["ci_high"].get<double>() <= 0.01);
  EXPECT_NE(v["protocol"].get<std::string>().find("once per seed 1, 2, 3, 4, 5, 6, 7, 8"), std::string::npos);
  EXPECT_EQ(v["pilot"]["runs"], 0);
  EXPECT_NE(r.out.find("regret against the grid's best"), std::string::npos) << r.out;
  // The same command again resumes (nothing reruns); another config into the same directory
  // would mix protocols: refused.
  const auto again = cli_test::run("plan --budget 48 --layers 2 --seq-len 16 --memories 2 --validate " + (d / "c.toml").string() +
                                   " --out " + (d / "v").string() + " --json " + (d / "p2.json").string());
  EXPECT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(nlohmann::json::parse(slurp(d / "p2.json"))["validate"]["regret"], v["regret"]);
  // The config file edited in place: the same protocol text, but the runs' resolved configs
  // would differ from the stored ones: the store refuses to mix them.
  const std::string c = slurp(d / "c.toml");
  { std::ofstream(d / "c.toml") << std::string(c).replace(c.find("steps = 5"), 9, "steps = 6"); }
  const auto mixed = cli_test::run("plan --budget 48 --layers 2 --seq-len 16 --memories 2 --validate " + (d / "c.toml").string() +
                                   " --out " + (d / "v").string());
  EXPECT_EQ(mixed.status, 2);
  EXPECT_NE(mixed.err.find("train.steps"), std::string::npos) << mixed.err;
  { std::ofstream(d / "c.toml") << c; }
  const std::string protocol = slurp(d / "v" / "validate.toml");
  cli_test::expect_bad_input("plan --budget 48 --layers 2 --seq-len 64 --memories 2 --validate " + (d / "c.toml").string() + " --out " +
                                 (d / "v").string(),
                             (d / "v").string() + ": holds the runs of another protocol (its validate.toml is not this plan's: another "
                             "plan, config path, seeds or grid); use another --out");
  EXPECT_EQ(slurp(d / "v" / "validate.toml"), protocol);
  cli_test::expect_bad_input("plan --budget 48 --layers 2 --seq-len 16 --validate " + (d / "c.toml").string() + " --seeds 1,2,3",
                             "--seeds: the validation protocol needs at least 8 distinct seeds (got 3): an interval over fewer is about their range");
  cli_test::expect_bad_input("plan --budget 0 --layers 2 --seq-len 16", "--budget: must be >= 1 (got 0)");
  cli_test::expect_bad_input("plan --budget 48 --layers 2 --seq-len 16 --profile back", "--profile: 'back' is not allowed (front, uniform)");
}

// The saturation point: the smallest d within the tolerance of the best loss; diverged pilots
// (NaN) never qualify; the pilot grid is powers of two up to the largest the budget allows.
TEST(Plan, SaturationPointAndCalibratedPlan) {
  EXPECT_EQ(saturation_point({2, 4, 8, 16}, {3.25, 3.23, 3.199, 3.173}, 0.01), 8);
  EXPECT_EQ(saturation_point({2, 4, 8, 16}, {3.25, 3.23, 3.199, 3.173}, 0.0), 16);
  EXPECT_EQ(saturation_point({2, 4, 8}, {NAN, 1.0, 0.999}, 0.01), 4);
  EXPECT_EQ(saturation_point({2, 4, 8}, {0.5, NAN, 1.0}, 0.01), 2);
  EXPECT_THROW(saturation_point({2, 4}, {NAN, NAN}, 0.01), UserError);
  EXPECT_EQ(calibration_dims(384, 6, 4, 64), (std::vector<int>{2, 4, 8, 16}));
  EXPECT_EQ(calibration_dims(600, 2, 4, 64), (std::vector<int>{2, 4, 8, 16, 32, 64}));
  EXPECT_EQ(calibration_dims(120, 2, 2, 64), (std::vector<int>{2, 4, 8, 16, 30}));
  // A calibrated plan stops at d* and leaves the rest of each share unspent.
  Calibration cal;
  cal.dims = {2, 4, 8, 16};
  cal.losses = {3.25, 3.23, 3.199, 3.173};
  cal.metric = "final_val_bits_per_byte";
  cal.saturation = 8;
  const Plan p = plan_allocation(req(384, 6, 32, 4), &cal);
  EXPECT_EQ(p.spent, 6 * 4 * 8);
  for (const auto& l : p.layers) {
    EXPECT_EQ(l.heads, 4);
    EXPECT_EQ(l.head_dim, 8);
    EXPECT_NE(l.reason.find("saturation point"), std::string::npos) << l.reason;
  }
  // d* at the top of the grid: no saturation found, the whole share is spent.
  cal.saturation = 16;
  EXPECT_EQ(plan_allocation(req(384, 6, 32, 4), &cal).spent, 384);
  // A measured trade-off replaces --memories: H* heads in every layer.
  cal.heads = {1, 2, 4, 8};
  cal.head_losses = {3.1, 3.0, 3.05, 3.2};
  cal.best_heads = 2;
  cal.dims = {2, 4, 8, 16, 32};
  cal.losses = {3.3, 3.2, 3.1, 3.0, 2.99};
  cal.saturation = 16;
  const Plan q = plan_allocation(req(384, 6, 32, 4), &cal);
  EXPECT_EQ(q.spent, 6 * 2 * 16);
  EXPECT_EQ(q.layers[3].heads, 2);
  EXPECT_NE(q.layers[3].reason.find("H 1 3.1, H 2 3, H 4 3.05, H 8 3.2"), std::string::npos) << q.layers[3].reason;
  EXPECT_EQ(calibration_heads(384, 6, 64), (std::vector<int>{1, 2, 4, 8, 16, 32}));
  EXPECT_EQ(calibration_heads(768, 6, 64), (std::vector<int>{2, 4, 8, 16, 32, 64}));
}

TEST(Plan, CalibrateRunsPilotsAndWritesThem) {
  const fs::path d = fs::temp_directory_path() / ("attnlab_plancal_" + std::to_string(::getpid()));
  fs::create_directories(d);
  { std::ofstream(d / "c.toml") << "seed = 1\n[task]\nkind = \"ngram_noise\"\nseq_len = 16\nn_gram = 2\nd_in = 2\nn_train = 0\nn_val = 32\n"
                                   "[model]\nd_model = 16\nffn = 16\n[train]\nsteps = 5\nbatch = 8\neval_every = 5\nthreads = 1\n"; }
  const auto r = cli_test::run("plan --budget 48 --layers 2 --seq-len 16 --memories 2 --calibrate " + (d / "c.toml").string() +
                               " --pilot-steps 3 --trade-off --out " + (d / "runs").string() + " --json " + (d / "p.json").string());
  ASSERT_EQ(r.status, 0) << r.err;
  std::ifstream f(d / "p.json");
  const auto j = nlohmann::json::parse(f);
  // The trade-off at share 24: 1 x 24, 2 x 12, 4 x 6, 8 x 3; H* is the lowest of their losses.
  const auto& c = j["calibration"];
  EXPECT_EQ(c["heads"], (std::vector<int>{1, 2, 4, 8}));
  ASSERT_EQ(c["head_losses"].size(), 4u);
  const int hs = c["best_heads"];
  const auto hl = c["head_losses"].get<std::vector<double>>();
  EXPECT_EQ(hl[size_t(std::min_element(hl.begin(), hl.end()) - hl.begin())], hl[size_t(std::log2(hs))]);
  // Saturation pilots at H* heads, the given dimensions the ones within 24 / H*.
  const auto dims = c["dims"].get<std::vector<int>>();
  ASSERT_FALSE(dims.empty());
  const int ds = c["saturation"];
  EXPECT_NE(std::find(dims.begin(), dims.end(), ds), dims.end());
  for (int dim : dims) {
    std::ifstream cf(d / "runs" / "calibrate" / ("H=" + std::to_string(hs) + ",d=" + std::to_string(dim)) / "seed=1001" / "config.toml");
    const std::string cfg((std::istreambuf_iterator<char>(cf)), std::istreambuf_iterator<char>());
    EXPECT_NE(cfg.find("head_dim = [ " + std::to_string(dim) + ", " + std::to_string(dim) + " ]"), std::string::npos) << cfg;
    EXPECT_NE(cfg.find("steps = 3"), std::string::npos) << cfg;
  }
  EXPECT_EQ(j["layers"][0]["heads"].get<int>(), hs);
  EXPECT_LE(j["layers"][0]["head_dim"].get<int>(), ds);
  cli_test::expect_bad_input("plan --budget 48 --layers 2 --seq-len 16 --memories 2 --calibrate " + (d / "c.toml").string() +
                                 " --pilot-dims 4,2",
                             "--pilot-dims: must increase (2 after 4)");
  cli_test::expect_bad_input("plan --budget 48 --layers 2 --seq-len 16 --memories 2 --calibrate " + (d / "c.toml").string() +
                                 " --pilot-dims 2,25",
                             "--pilot-dims: 25 is not in [1, budget / layers = 24]");
  cli_test::expect_bad_input("plan --budget 48 --layers 2 --seq-len 16 --memories 2 --calibrate " + (d / "c.toml").string() +
                                 " --pilot-dims 2,16",
                             "--pilot-dims: 16 is not in [1, budget / layers / heads = 12]");
  cli_test::expect_bad_input("plan --budget 48 --layers 2 --seq-len 16 --trade-off", "--trade-off: only with --calibrate SPEC");
  // Without --trade-off the saturation pilots run at --memories heads, and the plan keeps them.
  const auto r2 = cli_test::run("plan --budget 48 --layers 2 --seq-len 16 --memories 2 --calibrate " + (d / "c.toml").string() +
                                " --pilot-steps 3 --pilot-dims 3,12 --out " + (d / "runs2").string() + " --json " + (d / "p2.json").string() +
                                " --validate " + (d / "c.toml").string());
  ASSERT_EQ(r2.status, 0) << r2.err;
  std::ifstream f2(d / "p2.json");
  const auto j2 = nlohmann::json::parse(f2);
  EXPECT_EQ(j2["calibration"]["best_heads"], 0);
  EXPECT_EQ(j2["calibration"]["dims"], (std::vector<int>{3, 12}));
  EXPECT_EQ(j2["layers"][1]["heads"], 2);
  // --validate counts the pilots' compute: 2 runs of 3 steps, and their FLOPs in plan runs.
  const auto& pilot = j2["validate"]["pilot"];
  EXPECT_EQ(pilot["runs"], 2);
  EXPECT_EQ(pilot["steps"], 3);
  EXPECT_GT(pilot["flops"].get<double>(), 0);
  double plan_flops = 0;
  for (const auto& arm : j2["validate"]["arms"])
    if (arm["names"][0] == "plan") plan_flops = arm["train_flops"];
  EXPECT_NEAR(pilot["per_plan_run"].get<double>(), pilot["flops"].get<double>() / plan_flops, 1e-12);
  EXPECT_TRUE(fs::exists(d / "runs2" / "calibrate" / "H=2,d=3" / "seed=1001" / "summary.json"));
  EXPECT_TRUE(fs::exists(d / "runs2" / "calibrate" / "H=2,d=12" / "seed=1001" / "summary.json"));
  fs::remove_all(d);
}
