// Task `npy` (the user's own data) and `attnlab eval --inputs --predict`: batches hold exactly
// the files' rows, the split is the documented one, and the predictions written for the
// validation rows give, against the validation targets, the loss `attnlab eval` reports.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli_run.h"
#include "core/error.h"
#include "core/rng.h"
#include "io/config.h"
#include "io/npy.h"
#include "tasks/task.h"

using namespace attnlab;
namespace fs = std::filesystem;
using cli_test::run;

namespace {

const fs::path& dir() { return cli_test::scratch_dir("npytask"); }

// int64 tokens as numpy writes them (format 1.0).
void write_npy_i64(const std::string& path, const std::vector<int64_t>& shape, const std::vector<int64_t>& v) {
  std::string h = "{'descr': '<i8', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) h += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? ", " : "");
  const std::string out = cli_test::npy_v1(h + "), }", std::string(reinterpret_cast<const char*>(v.data()), v.size() * 8));
  std::ofstream(path, std::ios::binary) << out;
}

struct Data {
  int N = 90, T = 12, D = 3;
  std::vector<float> x, yseq, ypos;
  Data() {
    for (int i = 0; i < N * T * D; ++i) x.push_back(float(std::sin(0.37 * i) + 0.1 * std::cos(1.3 * i * i)));
    for (int n = 0; n < N; ++n) {
      yseq.push_back(x[size_t(n * T + T - 3) * D] - 0.5f * x[size_t(n * T + 2) * D + 1]);
      yseq.push_back(x[size_t(n * T + T - 1) * D + 2]);
      for (int t = 0; t < T; ++t) ypos.push_back(t >= 2 ? x[size_t(n * T + t - 2) * D] : 0.f);
    }
    write_npy_f32((dir() / "x.npy").string(), {N, T, D}, x.data());
    write_npy_f32((dir() / "yseq.npy").string(), {N, 2}, yseq.data());
    write_npy_f32((dir() / "ypos.npy").string(), {N, T, 1}, ypos.data());
    // The validation rows (the last 20%) alone, as a file to predict on.
    const int v0 = N - 18;
    write_npy_f32((dir() / "xval.npy").string(), {18, T, D}, x.data() + size_t(v0) * T * D);
  }
};
const Data& data() {
  static const Data d;
  return d;
}

std::string config(const std::string& targets, const std::string& model = "") {
  return "[task]\nkind = \"npy\"\ninputs = \"" + (dir() / "x.npy").string() + "\"\ntargets = \"" + (dir() / targets).string() +
         "\"\n[model]\n" + (model.empty() ? "d_model = 16\nlayers = 1\nheads = 2\nffn = 16\n" : model) +
         "[train]\nsteps = 60\nbatch = 16\nlr = 3e-3\neval_every = 30\nthreads = 1\n";
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream f(p);
  return nlohmann::json::parse(f);
}

}  // namespace

TEST(NpyTask, BatchesHoldTheFilesRowsSplitAtTheLastFifth) {
  const Data& d = data();
  const RunConfig c = parse_run_config(config("ypos.npy"), "npy.toml", {});
  EXPECT_EQ(c.task.seq_len, d.T);
  EXPECT_EQ(c.task.n_train, 72);
  EXPECT_EQ(c.task.n_val, 18);
  EXPECT_EQ(c.model.d_in, d.D);
  EXPECT_EQ(c.model.d_out, 1);
  auto task = make_task(c.task, 1);
  Batch b;
  const int64_t idx[2] = {5, 71};
  task->fill(Split::train, idx, 2, b);
  for (int j = 0; j < 2; ++j)
    for (int e = 0; e < d.T * d.D; ++e) ASSERT_EQ(b.x[size_t(j * d.T * d.D + e)], d.x[size_t(idx[j] * d.T * d.D + e)]);
  const int64_t v[1] = {3};  // validation row 3 = file row 72 + 3
  task->fill(Split::val, v, 1, b);
  for (int t = 0; t < d.T; ++t) EXPECT_EQ(b.y[size_t(t)], d.ypos[size_t(75 * d.T + t)]);
  // Per-sequence targets: one per sequence, predicted at the last position.
  const RunConfig s = parse_run_config(config("yseq.npy"), "npy.toml", {});
  auto ts = make_task(s.task, 1);
  EXPECT_TRUE(ts->last_only());
  ts->fill(Split::val, v, 1, b);
  ASSERT_EQ(b.y.size(), 2u);
  EXPECT_EQ(b.y[0], d.yseq[150]);
  EXPECT_EQ(b.y[1], d.yseq[151]);
  // The resolved config (absolute paths, derived values) reads back to the same run.
  EXPECT_EQ(resolved_toml(parse_run_config(resolved_toml(s), "resolved", {})), resolved_toml(s));
}

TEST(NpyTask, PredictionsOnTheValidationRowsGiveTheEvaluatedLoss) {
  const Data& d = data();
  for (const std::string targets : {"ypos.npy", "yseq.npy"}) {
    const fs::path cfg = dir() / ("c_" + targets + ".toml"), out = dir() / ("run_" + targets);
    std::ofstream(cfg) << config(targets);
    ASSERT_EQ(run("train " + cfg.string() + " --out " + out.string()).status, 0);
    const auto e = run("eval " + (out / "model.safetensors").string() + " --json " + (out / "e.json").string());
    ASSERT_EQ(e.status, 0) << e.err;
    const fs::path pred = dir() / ("pred_" + targets);
    const auto p = run("eval " + (out / "model.safetensors").string() + " --inputs " + (dir() / "xval.npy").string() + " --predict " +
                       pred.string() + " --batch 7");
    ASSERT_EQ(p.status, 0) << p.err;
    const NpyArray yhat = read_npy(pred.string(), "");
    double se = 0;
    if (targets == "yseq.npy") {
      ASSERT_EQ(yhat.shape, (std::vector<int64_t>{18, 2}));
      EXPECT_NE(p.out.find("predicted 18 sequences -> " + pred.string() + " [18, 2] float32"), std::string::npos) << p.out;
      for (int i = 0; i < 36; ++i) se += std::pow(yhat.values[size_t(i)] - d.yseq[size_t(72 * 2 + i)], 2);
      se /= 36;
    } else {
      ASSERT_EQ(yhat.shape, (std::vector<int64_t>{18, d.T, 1}));
      for (int i = 0; i < 18 * d.T; ++i) se += std::pow(yhat.values[size_t(i)] - d.ypos[size_t(72 * d.T + i)], 2);
      se /= 18 * d.T;
    }
    EXPECT_NEAR(se, read_json(out / "e.json")["val_loss"].get<double>(), 1e-6 * se) << targets;
  }
}

// Defect (issue 23): the files were cached by path for the life of the process, so in one
// Python session a y.npy rewritten with the same shape trained on the old data. The task now
// reads the file as it is: a new task after the rewrite sees the new values.
TEST(NpyTask, AFileRewrittenInPlaceIsReadAnewInTheSameProcess) {
  const Data& d = data();
  const std::string y = (dir() / "ystale.npy").string(), tmp = (dir() / "ystale.tmp").string();
  // In place, as numpy's np.save writes (same inode, same size): only the contents change.
  auto write_in_place = [&](float scale) {
    std::vector<float> v = d.ypos;
    for (float& e : v) e *= scale;
    write_npy_f32(tmp, {d.N, d.T, 1}, v.data());
    std::ifstream in(tmp, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::ofstream(y, std::ios::binary | std::ios::trunc) << ss.str();
  };
  auto val_targets = [&]() {
    const RunConfig c = parse_run_config(config("ystale.npy"), "npy.toml", {});
    auto task = make_task(c.task, 1);
    Batch b;
    const int64_t v[2] = {0, 17};
    task->fill(Split::val, v, 2, b);
    return b.y;
  };
  write_in_place(1.f);
  const std::vector<float> before = val_targets();
  // (file times advance in clock ticks of a few ms: let one pass, as any real edit does)
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  write_in_place(100.f);
  const std::vector<float> after = val_targets();
  ASSERT_EQ(before.size(), after.size());
  double norm = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(after[i], 100.f * before[i]) << i;
    norm += std::fabs(before[i]);
  }
  EXPECT_GT(norm, 0);
}

// Defect (issue 23): *_rel pooled one variance over every target dimension, so the
// differences between the dimensions' means counted as variance. Targets N(0, 1) and
// N(10, 1): the variance is the mean of the per-dimension variances (about 1, not about 26).
TEST(NpyTask, TheTargetVarianceIsTheMeanOfEachDimensionsVariance) {
  const Data& d = data();
  std::vector<float> y;
  for (int n = 0; n < d.N; ++n) {
    y.push_back(float(rng_normal(3, 1, uint64_t(n))));
    y.push_back(float(10.0 + rng_normal(3, 2, uint64_t(n))));
  }
  write_npy_f32((dir() / "ymeans.npy").string(), {d.N, 2}, y.data());
  double want = 0;  // over the validation rows, the last 18
  for (int j = 0; j < 2; ++j) {
    double s = 0, s2 = 0;
    for (int n = d.N - 18; n < d.N; ++n) { s += y[size_t(n * 2 + j)]; s2 += double(y[size_t(n * 2 + j)]) * y[size_t(n * 2 + j)]; }
    want += (s2 / 18 - (s / 18) * (s / 18)) / 2;
  }
  ASSERT_LT(want, 3.0);  // (the pooled variance would be above 25)
  const fs::path cfg = dir() / "c_means.toml", out = dir() / "run_means";
  std::ofstream(cfg) << config("ymeans.npy");
  ASSERT_EQ(run("train " + cfg.string() + " --out " + out.string() + " train.steps=2 train.eval_every=1").status, 0);
  const auto s = read_json(out / "summary.json");
  EXPECT_NEAR(s["val_target_var"].get<double>(), want, 1e-6 * want);
  EXPECT_NEAR(s["final_val_rel"].get<double>(), s["final_val_loss"].get<double>() / want, 1e-5);
  const auto e = run("eval " + (out / "model.safetensors").string() + " --json " + (out / "e.json").string());
  ASSERT_EQ(e.status, 0) << e.err;
  const auto j = read_json(out / "e.json");
  EXPECT_NEAR(j["val_rel"].get<double>(), j["val_loss"].get<double>() / want, 1e-5);
}

TEST(NpyTask, TokensAndSeparateValidationFiles) {
  // Tokens: y_t = x_{t-1} (0 at t = 0); logits written for every position.
  const int N = 64, T = 10, V = 7;
  std::vector<int64_t> x, y;
  for (int n = 0; n < N; ++n)
    for (int t = 0; t < T; ++t) x.push_back((n * 3 + t * t) % V);
  for (int n = 0; n < N; ++n)
    for (int t = 0; t < T; ++t) y.push_back(t > 0 ? x[size_t(n * T + t - 1)] : 0);
  write_npy_i64((dir() / "tok.npy").string(), {N, T}, x);
  write_npy_i64((dir() / "tgt.npy").string(), {N, T}, y);
  write_npy_i64((dir() / "vtok.npy").string(), {16, T}, std::vector<int64_t>(x.begin(), x.begin() + 16 * T));
  write_npy_i64((dir() / "vtgt.npy").string(), {16, T}, std::vector<int64_t>(y.begin(), y.begin() + 16 * T));
  const std::string c = "[task]\nkind = \"npy\"\ninputs = \"" + (dir() / "tok.npy").string() + "\"\ntargets = \"" + (dir() / "tgt.npy").string() +
                        "\"\nval_inputs = \"" + (dir() / "vtok.npy").string() + "\"\nval_targets = \"" + (dir() / "vtgt.npy").string() +
                        "\"\n[model]\nd_model = 16\nlayers = 1\nheads = 2\nffn = 16\n[train]\nsteps = 40\nbatch = 16\nlr = 3e-3\neval_every = 20\nthreads = 1\n";
  const RunConfig rc = parse_run_config(c, "tok.toml", {});
  EXPECT_EQ(rc.task.vocab, V);
  EXPECT_EQ(rc.model.vocab, V);
  EXPECT_EQ(rc.task.n_train, N);
  EXPECT_EQ(rc.task.n_val, 16);
  EXPECT_EQ(rc.train.loss, "ce");
  const fs::path cfg = dir() / "tok.toml", out = dir() / "run_tok";
  std::ofstream(cfg) << c;
  ASSERT_EQ(run("train " + cfg.string() + " --out " + out.string()).status, 0);
  ASSERT_EQ(run("eval " + (out / "model.safetensors").string() + " --json " + (out / "e.json").string()).status, 0);
  const fs::path pred = dir() / "pred_tok.npy";
  ASSERT_EQ(run("eval " + (out / "model.safetensors").string() + " --inputs " + (dir() / "vtok.npy").string() + " --predict " + pred.string()).status, 0);
  const NpyArray logits = read_npy(pred.string(), "");
  ASSERT_EQ(logits.shape, (std::vector<int64_t>{16, T, V}));
  double ce = 0;  // mean cross-entropy of the written logits
  for (int i = 0; i < 16 * T; ++i) {
    const double* l = logits.values.data() + size_t(i) * V;
    double mx = l[0], z = 0;
    for (int v = 1; v < V; ++v) mx = std::max(mx, l[v]);
    for (int v = 0; v < V; ++v) z += std::exp(l[v] - mx);
    ce += mx + std::log(z) - l[y[size_t(i)]];
  }
  ce /= 16 * T;
  EXPECT_NEAR(ce, read_json(out / "e.json")["val_loss"].get<double>(), 1e-5 * ce);
}
