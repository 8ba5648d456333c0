// attnlab plan: the plan spends at most D, gives the first layer one head per memory, falls
// front to back with the front profile, caps the head dimension, writes the JSON contract,
// and --validate trains the plan beside the conventional baseline.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "analysis/planner.h"
#include "cli_run.h"
#include "core/error.h"

using namespace attnlab;
namespace fs = std::filesystem;

TEST(Plan, SpendsAtMostTheBudgetWithOneHeadPerMemoryFirst) {
  for (int64_t D : {24, 100, 384, 1000, 5000})
    for (int L : {1, 2, 6})
      for (int M : {1, 3, 4}) {
        if (D < 3 * L * M) continue;
        SCOPED_TRACE(std::to_string(D) + " " + std::to_string(L) + " " + std::to_string(M));
        const Plan p = plan_allocation(D, L, 64, M, "front");
        ASSERT_EQ(p.layers.size(), size_t(L));
        int64_t spent = 0;
        for (const auto& l : p.layers) {
          spent += int64_t(l.heads) * l.head_dim;
          EXPECT_LE(l.head_dim, 64);
          EXPECT_GE(l.head_dim, 1);
          EXPECT_FALSE(l.reason.empty());
        }
        EXPECT_EQ(spent, p.spent);
        EXPECT_LE(spent, D);
        // M heads first, unless M heads of dimension 64 cannot hold layer 0's share.
        const auto& f = p.layers[0];
        EXPECT_GE(f.heads, M);
        if (f.heads > M) {
          EXPECT_GT(int64_t(f.heads) * f.head_dim, int64_t(64) * M - f.heads);
        }
        for (int l = 1; l < L; ++l)
          EXPECT_LE(int64_t(p.layers[size_t(l)].heads) * p.layers[size_t(l)].head_dim,
                    int64_t(p.layers[size_t(l - 1)].heads) * p.layers[size_t(l - 1)].head_dim);
      }
  // Front-loaded 6 layers: shares 3 : 2.6 : 2.2 : 1.8 : 1.4 : 1 of D = 384 (96 ... 32).
  const Plan p = plan_allocation(384, 6, 64, 4, "front");
  EXPECT_EQ(p.layers[0].heads * p.layers[0].head_dim, 96);
  EXPECT_EQ(p.layers[5].heads * p.layers[5].head_dim, 32);
  // Uniform, with more budget than 4 heads of 64 can hold: more heads, not larger ones.
  const Plan u = plan_allocation(2048, 2, 64, 4, "uniform");
  EXPECT_EQ(u.layers[0].heads, 16);
  EXPECT_EQ(u.layers[0].head_dim, 64);
  EXPECT_THROW(plan_allocation(10, 6, 64, 4, "front"), UserError);
  EXPECT_THROW(plan_allocation(384, 6, 64, 4, "back"), UserError);
}

TEST(Plan, JsonContractAndValidate) {
  const fs::path d = fs::temp_directory_path() / ("attnlab_plan_" + std::to_string(::getpid()));
  fs::create_directories(d);
  { std::ofstream(d / "c.toml") << "seed = 1\n[task]\nkind = \"ngram_noise\"\nseq_len = 16\nn_gram = 2\nd_in = 2\nn_train = 0\nn_val = 32\n"
                                   "[model]\nd_model = 16\nffn = 16\n[train]\nsteps = 5\nbatch = 8\neval_every = 5\nthreads = 1\n"; }
  const auto r = cli_test::run("plan --budget 48 --layers 2 --seq-len 16 --memories 2 --validate " + (d / "c.toml").string() +
                               " --seeds 1,2 --out " + (d / "runs").string() + " --json " + (d / "p.json").string());
  ASSERT_EQ(r.status, 0) << r.err;
  std::ifstream f(d / "p.json");
  const auto j = nlohmann::json::parse(f);
  EXPECT_EQ(j["budget"], 48);
  ASSERT_EQ(j["layers"].size(), 2u);
  for (const auto& l : j["layers"]) {
    EXPECT_TRUE(l["heads"].is_number_integer());
    EXPECT_TRUE(l["head_dim"].is_number_integer());
    EXPECT_TRUE(l["reason"].is_string());
  }
  EXPECT_EQ(j["layers"][0]["heads"], 2);
  EXPECT_TRUE(j["validate"]["plan"].is_number());
  EXPECT_TRUE(j["validate"]["baseline"].is_number());
  for (const char* seed : {"seed=1", "seed=2"}) {
    EXPECT_TRUE(fs::exists(d / "runs" / "plan" / seed / "summary.json"));
    EXPECT_TRUE(fs::exists(d / "runs" / "baseline" / seed / "summary.json"));
  }
  EXPECT_EQ(j["validate"]["seeds"].size(), 2u);
  EXPECT_TRUE(j["validate"]["improvement"]["measured"].is_number());
  EXPECT_LE(j["validate"]["improvement"]["ci_low"].get<double>(), j["validate"]["improvement"]["ci_high"].get<double>());
  // The baseline: equal shares of 24 in one head of dimension 24 (the share is below 64).
  std::ifstream bf(d / "runs" / "baseline" / "seed=1" / "config.toml");
  const std::string bcfg((std::istreambuf_iterator<char>(bf)), std::istreambuf_iterator<char>());
  EXPECT_NE(bcfg.find("head_dim = [ 24, 24 ]"), std::string::npos) << bcfg;
  std::ifstream cf(d / "runs" / "plan" / "seed=1" / "config.toml");
  const std::string cfg((std::istreambuf_iterator<char>(cf)), std::istreambuf_iterator<char>());
  EXPECT_NE(cfg.find("heads = [ 2, 2 ]"), std::string::npos) << cfg;
  cli_test::expect_bad_input("plan --budget 0 --layers 2 --seq-len 16", "--budget: must be >= 1 (got 0)");
  cli_test::expect_bad_input("plan --budget 48 --layers 2 --seq-len 16 --profile back", "--profile: 'back' is not allowed (front, uniform)");
  fs::remove_all(d);
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
  const Plan p = plan_allocation(384, 6, 32, 4, "uniform", 64, &cal);
  EXPECT_EQ(p.spent, 6 * 4 * 8);
  for (const auto& l : p.layers) {
    EXPECT_EQ(l.heads, 4);
    EXPECT_EQ(l.head_dim, 8);
    EXPECT_NE(l.reason.find("saturation point"), std::string::npos) << l.reason;
  }
  // d* at the top of the grid: no saturation found, the whole share is spent.
  cal.saturation = 16;
  EXPECT_EQ(plan_allocation(384, 6, 32, 4, "uniform", 64, &cal).spent, 384);
  // A measured trade-off replaces --memories: H* heads in every layer.
  cal.heads = {1, 2, 4, 8};
  cal.head_losses = {3.1, 3.0, 3.05, 3.2};
  cal.best_heads = 2;
  cal.dims = {2, 4, 8, 16, 32};
  cal.losses = {3.3, 3.2, 3.1, 3.0, 2.99};
  cal.saturation = 16;
  const Plan q = plan_allocation(384, 6, 32, 4, "uniform", 64, &cal);
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
                                " --pilot-steps 3 --pilot-dims 3,12 --out " + (d / "runs2").string() + " --json " + (d / "p2.json").string());
  ASSERT_EQ(r2.status, 0) << r2.err;
  std::ifstream f2(d / "p2.json");
  const auto j2 = nlohmann::json::parse(f2);
  EXPECT_EQ(j2["calibration"]["best_heads"], 0);
  EXPECT_EQ(j2["calibration"]["dims"], (std::vector<int>{3, 12}));
  EXPECT_EQ(j2["layers"][1]["heads"], 2);
  EXPECT_TRUE(fs::exists(d / "runs2" / "calibrate" / "H=2,d=3" / "seed=1001" / "summary.json"));
  EXPECT_TRUE(fs::exists(d / "runs2" / "calibrate" / "H=2,d=12" / "seed=1001" / "summary.json"));
  fs::remove_all(d);
}
