// `attnlab eval`: a checkpoint evaluated with the config in its metadata gives the training
// run's own final validation loss and probes; other sequence lengths; bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <tuple>
#include <nlohmann/json.hpp>

#include "analysis/compress.h"
#include "analysis/compress_summary.h"
#include "cli_run.h"

namespace fs = std::filesystem;
using cli_test::expect_bad_input;
using cli_test::run;

namespace {
fs::path scratch(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("attnlab_eval_" + std::to_string(::getpid())) / name;
  fs::create_directories(d);
  return d;
}
nlohmann::json read_json(const fs::path& p) {
  std::ifstream f(p);
  return nlohmann::json::parse(f);
}
void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }
const char* kRetrieval =
    "seed = 3\n[task]\nkind = \"retrieval\"\nseq_len = 16\nd_in = 8\nn_train = 0\nn_val = 96\n"
    "[model]\nd_model = 16\nlayers = 1\nheads = 2\nhead_dim = 4\nffn = 0\npos = \"none\"\nrpe = \"none\"\n"
    "[train]\nsteps = 30\nbatch = 16\nlr = 3e-3\neval_every = 30\nthreads = 1\n";
}  // namespace

TEST(EvalCli, ReproducesTheRunsFinalValidationLossAndProbes) {
  const fs::path d = scratch("same");
  write(d / "c.toml", kRetrieval);
  ASSERT_EQ(run("train " + (d / "c.toml").string() + " --out " + (d / "run").string()).status, 0);
  const auto r = run("eval " + (d / "run" / "model.safetensors").string() + " train.threads=1 --json " + (d / "e.json").string());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto s = read_json(d / "run" / "summary.json"), e = read_json(d / "e.json");
  EXPECT_DOUBLE_EQ(e["val_loss"].get<double>(), s["final_val_loss"].get<double>());
  EXPECT_DOUBLE_EQ(e["val_rel"].get<double>(), s["final_val_rel"].get<double>());
  EXPECT_DOUBLE_EQ(e["max_abs_logit"].get<double>(), s["max_abs_logit"].get<double>());
  EXPECT_EQ(e["heads"].size(), 2u);
  EXPECT_EQ(e["params_total"], s["params_total"]);
  EXPECT_NE(r.out.find("val_loss"), std::string::npos);
  // Another sequence length: more keys to tell apart.
  ASSERT_EQ(run("eval " + (d / "run" / "model.safetensors").string() + " task.seq_len=64 --json " + (d / "e64.json").string()).status, 0);
  EXPECT_NE(read_json(d / "e64.json")["val_loss"].get<double>(), e["val_loss"].get<double>());
  fs::remove_all(d);
}

TEST(EvalCli, BadInputIsOneLineAndExitTwo) {
  const fs::path d = scratch("bad");
  write(d / "c.toml", std::string(kRetrieval) + "");
  std::string learned = kRetrieval;
  learned.replace(learned.find("pos = \"none\""), 12, "pos = \"learned\"");
  write(d / "l.toml", learned);
  ASSERT_EQ(run("train " + (d / "l.toml").string() + " --out " + (d / "l").string()).status, 0);
  const std::string ck = (d / "l" / "model.safetensors").string();
  expect_bad_input("eval " + ck + " task.seq_len=32",
                   ck + " (its config): task.seq_len: the model learned absolute positions up to 16; it cannot be evaluated at seq_len 32");
  expect_bad_input("eval " + (d / "c.toml").string(), (d / "c.toml").string() + ": not a valid safetensors file");
  expect_bad_input("eval " + (d / "missing.safetensors").string(), (d / "missing.safetensors").string());
  expect_bad_input("eval " + ck + " model.heads=3", ck + ": tensor 'layers.0.attn.q.weight' has the wrong shape");
  fs::remove_all(d);
}

// train.compress_ranks: the run's summary gets its compression curve; at full rank (4 =
// head_dim) nothing is lost or saved, at rank 1 parameters are saved.
TEST(EvalCli, TrainCompressRanksAddsTheCurveToTheSummary) {
  const fs::path d = scratch("curve");
  std::string cfg = kRetrieval;
  cfg.replace(cfg.find("layers = 1"), 10, "layers = 3");
  write(d / "c.toml", cfg + "compress_ranks = [1, 4]\n");
  const auto r = run("train " + (d / "c.toml").string() + " --out " + (d / "run").string());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto s = read_json(d / "run" / "summary.json");
  for (const char* scope : {"model", "early", "late", "l0", "l1"}) {
    SCOPED_TRACE(scope);
    ASSERT_TRUE(s.contains(std::string("compress_delta.") + scope + ".r4")) << s.dump();
    EXPECT_NEAR(s[std::string("compress_delta.") + scope + ".r4"].get<double>(), 0.0, 1e-5);
    EXPECT_EQ(s[std::string("compress_saved.") + scope + ".r4"].get<int64_t>(), 0);
    EXPECT_GT(s[std::string("compress_saved.") + scope + ".r1"].get<int64_t>(), 0);
  }
  EXPECT_DOUBLE_EQ(s["compress_late_minus_early.r1"].get<double>(),
                   s["compress_delta.late.r1"].get<double>() - s["compress_delta.early.r1"].get<double>());
  // Across the three layers: entropy ratio against loss added per parameter removed.
  std::vector<double> entropy, cost;
  for (int l = 0; l < 3; ++l) {
    const std::string at = "l" + std::to_string(l) + ".r1";
    entropy.push_back(s["attn_entropy_ratio.l" + std::to_string(l)].get<double>());
    cost.push_back(s["compress_delta." + at].get<double>() / s["compress_saved." + at].get<double>());
  }
  ASSERT_TRUE(s.contains("compress_entropy_corr.r1")) << s.dump();
  EXPECT_NEAR(s["compress_entropy_corr.r1"].get<double>(), attnlab::pearson(entropy, cost), 1e-12);
  EXPECT_FALSE(s.contains("compress_entropy_corr.r4"));  // nothing removed at full rank: no cost per parameter
  EXPECT_TRUE(fs::exists(d / "run" / "compression.json"));
  // compress_heads: each head alone; the summary has the mean per layer and per half, from
  // the per-head rows of compression.json (the retrieval config has 2 heads per layer).
  write(d / "h.toml", cfg + "compress_ranks = [1]\ncompress_heads = true\n");
  const auto rh = run("train " + (d / "h.toml").string() + " --out " + (d / "heads").string());
  ASSERT_EQ(rh.status, 0) << rh.err;
  const auto sh = read_json(d / "heads" / "summary.json");
  std::ifstream cj(d / "heads" / "compression.json");
  const auto curve = nlohmann::json::parse(cj);
  double sum[3] = {0, 0, 0};
  int n[3] = {0, 0, 0};
  for (const auto& row : curve["rows"])
    if (row["scope"] == "head") { sum[row["layer"].get<int>()] += row["delta"].get<double>(); ++n[row["layer"].get<int>()]; }
  for (int l = 0; l < 3; ++l) {
    ASSERT_GE(n[l], 1);
    EXPECT_NEAR(sh["compress_head_delta.l" + std::to_string(l) + ".r1"].get<double>(), sum[l] / n[l], 1e-12);
  }
  const double early = sum[0] / n[0], late = (sum[1] + sum[2]) / (n[1] + n[2]);  // 3 layers: the first is early
  EXPECT_NEAR(sh["compress_head_delta.early.r1"].get<double>(), early, 1e-12);
  EXPECT_NEAR(sh["compress_head_delta.late.r1"].get<double>(), late, 1e-12);
  EXPECT_NEAR(sh["compress_head_late_minus_early.r1"].get<double>(), late - early, 1e-12);
  EXPECT_FALSE(s.contains("compress_head_delta.l0.r1"));  // not asked for
  // One layer: per-layer means only, no halves (as the layer scopes have none).
  write(d / "h1.toml", std::string(kRetrieval) + "compress_ranks = [1]\ncompress_heads = true\n");
  ASSERT_EQ(run("train " + (d / "h1.toml").string() + " --out " + (d / "one").string()).status, 0);
  const auto s1 = read_json(d / "one" / "summary.json");
  EXPECT_TRUE(s1.contains("compress_head_delta.l0.r1")) << s1.dump();
  for (const char* k : {"compress_head_delta.early.r1", "compress_head_delta.late.r1", "compress_head_late_minus_early.r1",
                        "compress_delta.late.r1"})
    EXPECT_FALSE(s1.contains(k)) << k;
  write(d / "h2.toml", cfg + "compress_heads = true\n");
  expect_bad_input("train " + (d / "h2.toml").string() + " --out " + (d / "h2").string(),
                   "train.compress_heads: needs train.compress_ranks (the ranks each head is compressed to)");
  std::string dpfree = cfg + "compress_ranks = [2]\n";
  dpfree.replace(dpfree.find("[train]"), 7, "dot_product = false\n[train]");
  write(d / "bad.toml", dpfree);
  expect_bad_input("train " + (d / "bad.toml").string() + " --out " + (d / "bad").string(),
                   "train.compress_ranks: needs model.kind = \"transformer\" with the dot product");
  fs::remove_all(d);
}

// train.compress_groups: the paper's grouped heads against truncated SVD at equal parameters
// removed. With 4 heads of 4 (d_model 16), merging into 2 groups removes 2 whole heads, 536
// parameters, exactly what rank 2 of both forms of all 4 heads removes; 1 group matches rank 1.
// Each summary field is what `attnlab compress` and `attnlab eval` give on the checkpoint.
TEST(EvalCli, TrainCompressGroupsAgainstSvdAtEqualParameters) {
  const fs::path d = scratch("groups");
  std::string cfg = kRetrieval;
  cfg.replace(cfg.find("heads = 2"), 9, "heads = 4");
  write(d / "c.toml", cfg + "compress_groups = [1, 2, 4]\n");
  const auto r = run("train " + (d / "c.toml").string() + " --out " + (d / "run").string());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto s = read_json(d / "run" / "summary.json");
  const std::string ck = (d / "run" / "model.safetensors").string();
  auto val_loss = [&](const std::string& compress_args, const std::string& name) {
    const std::string out = (d / (name + ".safetensors")).string(), js = (d / (name + ".json")).string();
    const auto c = run("compress " + ck + " " + compress_args + " -o " + out);
    EXPECT_EQ(c.status, 0) << c.err;
    EXPECT_EQ(run("eval " + out + " --json " + js).status, 0);
    return read_json(js)["val_loss"].get<double>();
  };
  const double base = s["final_val_loss"].get<double>();
  for (const auto& [G, rank, saved] : {std::tuple{1, 1, 804}, {2, 2, 536}}) {
    const std::string g = ".g" + std::to_string(G);
    SCOPED_TRACE(g);
    ASSERT_TRUE(s.contains("compress_group_delta" + g)) << s.dump();
    EXPECT_EQ(s["compress_group_saved" + g].get<int64_t>(), saved);
    EXPECT_EQ(s["compress_group_svd_saved" + g].get<int64_t>(), saved);
    EXPECT_EQ(s["compress_group_svd_rank" + g].get<int>(), rank);
    const double grouped = val_loss("--group-heads " + std::to_string(G), "g" + std::to_string(G));
    const double svd = val_loss("--qk-rank " + std::to_string(rank) + " --ov-rank " + std::to_string(rank), "r" + std::to_string(rank));
    EXPECT_NEAR(s["compress_group_delta" + g].get<double>(), grouped - base, 1e-5);
    EXPECT_NEAR(s["compress_group_svd_delta" + g].get<double>(), svd - base, 1e-5);
    EXPECT_NEAR(s["compress_group_minus_svd" + g].get<double>(), grouped - svd, 1e-5);
  }
  EXPECT_FALSE(s.contains("compress_group_delta.g4"));  // no layer has more than 4 heads
  EXPECT_FALSE(s.contains("compress_delta.model.r1"));  // no ranks asked for
  const auto rows = read_json(d / "run" / "compression.json")["rows"];
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[1]["scope"], "group_svd");
  EXPECT_EQ(rows[1]["groups"], 1);
  EXPECT_GT(rows[1]["flops_removed"].get<double>(), 0.0);
  write(d / "bad.toml", "[task]\nkind = \"retrieval\"\nseq_len = 16\nd_in = 8\n[model]\nkind = \"lstm\"\nwidth = 8\n"
                        "[train]\nsteps = 2\ncompress_groups = [2]\n");
  expect_bad_input("train " + (d / "bad.toml").string() + " --out " + (d / "bad").string(),
                   "train.compress_groups: needs model.kind = \"transformer\" (it merges attention heads)");
  fs::remove_all(d);
}

// The validation loss by position: its mean over the positions is the validation loss (text:
// every position carries loss), each bucket is the mean over its positions, the ratio is the
// last bucket over the one before, and the run's summary has the same buckets. A memory task
// leaves the positions without a target (t = 0: no pointer reaches back) null.
TEST(EvalCli, LossByPositionAveragesToTheValidationLoss) {
  const fs::path d = scratch("bypos");
  write(d / "c.toml",
        "seed = 2\n[task]\nkind = \"text_lm\"\nseq_len = 20\nn_val = 64\n"
        "[model]\nd_model = 16\nlayers = 1\nheads = 2\nhead_dim = 8\nffn = 16\n"
        "[train]\nsteps = 20\nbatch = 8\nlr = 3e-3\neval_every = 20\nthreads = 1\n");
  ASSERT_EQ(run("train " + (d / "c.toml").string() + " --out " + (d / "run").string()).status, 0);
  const auto r = run("eval " + (d / "run" / "model.safetensors").string() + " train.threads=1 --json " + (d / "e.json").string());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto s = read_json(d / "run" / "summary.json"), e = read_json(d / "e.json");
  const auto& by = e["val_loss_by_position"];
  ASSERT_EQ(by.size(), 20u);
  double mean = 0;
  for (const auto& v : by) mean += v.get<double>() / 20;
  EXPECT_NEAR(mean, e["val_loss"].get<double>(), 1e-9);
  const auto bucket = [&](int lo, int hi) {
    double m = 0;
    for (int t = lo; t < hi; ++t) m += by[size_t(t)].get<double>() / (hi - lo);
    return m;
  };
  const int edges[] = {0, 4, 16, 20};
  for (int i = 0; i < 3; ++i) {
    const std::string key = "val_loss_pos." + std::to_string(edges[i]) + "_" + std::to_string(edges[i + 1]);
    ASSERT_TRUE(e.contains(key)) << key;
    EXPECT_NEAR(e[key].get<double>(), bucket(edges[i], edges[i + 1]), 1e-9) << key;
    EXPECT_NEAR(s[key].get<double>(), e[key].get<double>(), 1e-9) << key;
  }
  EXPECT_FALSE(e.contains("val_loss_pos.20_64"));
  EXPECT_NEAR(e["val_loss_pos_ratio"].get<double>(), bucket(16, 20) / bucket(4, 16), 1e-9);
  EXPECT_NEAR(s["val_loss_pos_ratio"].get<double>(), e["val_loss_pos_ratio"].get<double>(), 1e-9);

  write(d / "m.toml",
        "seed = 2\n[task]\nkind = \"adaptive_memory\"\nseq_len = 12\nmax_pointer = 3\nn_train = 0\nn_val = 64\n"
        "[model]\nd_model = 16\nlayers = 1\nheads = 2\nhead_dim = 8\nffn = 16\n"
        "[train]\nsteps = 5\nbatch = 8\neval_every = 5\nthreads = 1\n");
  ASSERT_EQ(run("train " + (d / "m.toml").string() + " --out " + (d / "mrun").string()).status, 0);
  ASSERT_EQ(run("eval " + (d / "mrun" / "model.safetensors").string() + " --json " + (d / "m.json").string()).status, 0);
  const auto m = read_json(d / "m.json")["val_loss_by_position"];
  ASSERT_EQ(m.size(), 12u);
  EXPECT_TRUE(m[0].is_null());
  for (size_t t = 3; t < 12; ++t) EXPECT_TRUE(m[t].is_number()) << t;
  fs::remove_all(d);
}
