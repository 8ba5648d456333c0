// `attnlab train --resume`: a run killed with SIGKILL at any moment and resumed ends with the
// metrics.jsonl and summary.json of an uninterrupted run (timings aside); a sweep continues a
// killed run from its checkpoint; resuming what cannot be resumed is one clear line.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli_run.h"
#include "core/rng.h"
#include "sweep/store.h"

namespace fs = std::filesystem;
using cli_test::expect_bad_input;
using cli_test::run;
using attnlab::rng_below;

namespace {

std::string src(const std::string& rel) { return std::string(ATTNLAB_SOURCE_DIR) + "/" + rel; }

// Two runs that exercise every piece of state: a Transformer under AdamW with warmup, a
// cosine schedule and clipping; and paper 3's shallow attention under projected SGD (the
// projection centers), a validation pass every step, checkpoints every 7 steps (not on the
// evaluation grid, so the evaluation windows are cut) and gradient blocks of 9.
std::string transformer_args() {
  return src("experiments/sparse_memory.toml") +
         " train.steps=200 train.eval_every=20 train.warmup=30 train.lr_schedule=cosine train.grad_clip=0.5"
         " task.n_val=64 task.n_train=256 task.seq_len=48 model.d_model=32 model.ffn=64 train.threads=1";
}
std::string shallow_args() {
  return src("experiments/p3_e1_width.toml") +
         " --scale quick task.n=600 model.width=16 train.optimizer=projected_sgd train.batch=32 train.lr_schedule=constant"
         " train.lr=0.5 train.steps=150 train.eval_every=20 train.checkpoint_every=7 train.grad_block=9 train.threads=1";
}

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> w;
  for (std::string x; in >> x;) w.push_back(x);
  return w;
}

// `attnlab ARGS` in the background, its output to `log` (appended).
pid_t start(const std::string& args, const std::string& log = "/dev/null") {
  std::vector<std::string> w = words(args);
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv{const_cast<char*>("attnlab")};
    for (auto& x : w) argv.push_back(x.data());
    argv.push_back(nullptr);
    execv(ATTNLAB_BINARY, argv.data());
    _exit(127);
  }
  return pid;
}

int lines_of(const fs::path& p) {
  std::ifstream f(p);
  int n = 0;
  for (std::string l; std::getline(f, l);) n += !l.empty();
  return n;
}

std::string metrics_without_time(const fs::path& dir) {
  std::ifstream f(dir / "metrics.jsonl");
  std::string all;
  for (std::string line; std::getline(f, line);) {
    auto j = nlohmann::json::parse(line);
    j.erase("wall_s");
    all += j.dump() + "\n";
  }
  return all;
}

std::string summary_without_time(const fs::path& dir) {
  std::ifstream f(dir / "summary.json");
  if (!f) return "(no summary.json)";
  auto j = nlohmann::json::parse(f);
  for (const char* k : {"wall_s", "train_s", "tokens_per_s", "ms_per_step"}) j.erase(k);
  return j.dump();
}

// Kills a fresh run once it has written `lines` metrics lines (plus a pseudo-random few
// milliseconds), then resumes it; returns whether the kill landed before the run ended.
bool kill_then_resume(const std::string& args, const fs::path& dir, int lines, uint64_t trial) {
  fs::remove_all(dir);
  const pid_t pid = start("train " + args + " --out " + dir.string(), dir.string() + ".log");
  for (int i = 0; i < 20000 && lines_of(dir / "metrics.jsonl") < lines; ++i) std::this_thread::sleep_for(std::chrono::microseconds(500));
  std::this_thread::sleep_for(std::chrono::microseconds(rng_below(7, 1, trial, 4000)));
  kill(pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
  const bool killed = WIFSIGNALED(st);
  EXPECT_TRUE(killed || (WIFEXITED(st) && WEXITSTATUS(st) == 0)) << dir << ": exit status " << WEXITSTATUS(st);
  if (killed) {
    const bool has_ckpt = fs::exists(dir / "checkpoint.safetensors");
    const auto r = run("train " + args + (has_ckpt ? " --resume " : " --out ") + dir.string());
    EXPECT_EQ(r.status, 0) << dir << ": " << r.err;
    if (has_ckpt) EXPECT_NE(r.err.find("resuming " + dir.string() + " from step "), std::string::npos) << r.err;
    const size_t at = r.err.find(" from step ");
    std::printf("  killed after %d metrics lines: %s\n", lines,
                at == std::string::npos ? "no checkpoint yet, rerun from step 0" : ("resumed" + r.err.substr(at, r.err.find('\n', at) - at)).c_str());
  } else {
    std::printf("  not killed (the run had ended)\n");
  }
  return killed;
}

void expect_kill_and_resume_is_exact(const std::string& args, const std::string& name) {
  const fs::path base = fs::temp_directory_path() / ("attnlab_resume_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(base);
  const auto t0 = std::chrono::steady_clock::now();
  const auto ref = run("train " + args + " --out " + (base / "ref").string());
  ASSERT_EQ(ref.status, 0) << ref.err;
  // Waits scale with the uninterrupted run's time, so that a slower build (sanitizers) or a
  // loaded machine kills at comparable moments.
  const double ref_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const std::string want_m = metrics_without_time(base / "ref"), want_s = summary_without_time(base / "ref");
  const int total = lines_of(base / "ref" / "metrics.jsonl");
  ASSERT_GE(total, 8);
  EXPECT_FALSE(fs::exists(base / "ref" / "checkpoint.safetensors")) << "a completed run keeps model.safetensors only";
  int killed = 0;
  // Killed early (before or at the first checkpoint), in the middle, and at the last lines.
  const int at[] = {0, 1, total / 2, total - 1};
  for (int k = 0; k < 4; ++k) {
    const fs::path dir = base / ("k" + std::to_string(k));
    killed += kill_then_resume(args, dir, at[k], uint64_t(k));
    EXPECT_TRUE(metrics_without_time(dir) == want_m) << name << ": metrics differ, killed after " << at[k] << " lines";
    EXPECT_TRUE(summary_without_time(dir) == want_s) << name << ": summary differs, killed after " << at[k] << " lines";
  }
  EXPECT_GE(killed, 3) << "the kills should land while the run is unfinished";
  // Killed again and again at pseudo-random moments, each time resumed, until it completes.
  const fs::path dir = base / "many";
  int kills = 0, st = 0;
  for (int attempt = 0; attempt < 60; ++attempt) {
    const bool resume = fs::exists(dir / "checkpoint.safetensors");
    const pid_t pid = start("train " + args + (resume ? " --resume " : " --out ") + dir.string(), dir.string() + ".log");
    // Growing waits (from a tenth of the whole run's time, a twentieth more each attempt): each
    // attempt gets further than the one before, at a pseudo-random moment.
    const double wait = ref_ms * (0.1 + 0.05 * attempt) * (0.75 + 0.5 * double(rng_below(11, 2, uint64_t(attempt), 1000)) / 1000.0);
    std::this_thread::sleep_for(std::chrono::microseconds(int64_t(1000 * wait)));
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    if (WIFEXITED(st)) break;
    ++kills;
  }
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "still killed after 60 attempts";
  EXPECT_GE(kills, 2);
  std::printf("%s: completed after %d kills at pseudo-random moments\n", name.c_str(), kills);
  {
    std::ifstream log(dir.string() + ".log");
    for (std::string l; std::getline(log, l);)
      if (l.rfind("resuming ", 0) == 0) std::printf("  %s\n", l.c_str());
  }
  EXPECT_TRUE(metrics_without_time(dir) == want_m) << name << ": metrics differ after " << kills << " kills";
  EXPECT_TRUE(summary_without_time(dir) == want_s) << name << ": summary differs after " << kills << " kills";
  fs::remove_all(base);
}

}  // namespace

TEST(Resume, TransformerKilledAnywhereResumesExactly) { expect_kill_and_resume_is_exact(transformer_args(), "transformer"); }

TEST(Resume, ProjectedShallowAttentionKilledAnywhereResumesExactly) {
  expect_kill_and_resume_is_exact(shallow_args(), "shallow");
}

TEST(Resume, WhatCannotBeResumedIsOneClearLine) {
  const fs::path d = fs::temp_directory_path() / ("attnlab_resume_bad_" + std::to_string(getpid()));
  fs::remove_all(d);
  const std::string args = transformer_args();
  expect_bad_input("train " + args + " --resume " + (d / "none").string(),
                   (d / "none").string() + "/checkpoint.safetensors: no checkpoint to resume from (the run wrote none: start it again without --resume)");
  ASSERT_EQ(run("train " + args + " --out " + (d / "done").string()).status, 0);
  expect_bad_input("train " + args + " --resume " + (d / "done").string(),
                   (d / "done").string() + ": the run has completed (model.safetensors, summary.json): nothing to resume");
  // A checkpoint of another config: the first key that differs, both values.
  const fs::path k = d / "k";
  const pid_t pid = start("train " + args + " --out " + k.string());
  for (int i = 0; i < 20000 && !fs::exists(k / "checkpoint.safetensors"); ++i) std::this_thread::sleep_for(std::chrono::microseconds(500));
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  ASSERT_TRUE(fs::exists(k / "checkpoint.safetensors"));
  expect_bad_input("train " + args + " train.steps=300 --resume " + k.string(),
                   (k / "checkpoint.safetensors").string() + ": was written by a run with train.steps = 200, but the config gives "
                   "train.steps = 300 (a run resumes with the config it started with: DIR/config.toml)");
  expect_bad_input("train " + args + " --resume " + k.string() + " --out " + (d / "elsewhere").string(),
                   "--resume " + k.string() + " --out " + (d / "elsewhere").string() + ": a resumed run writes to its own directory (drop --out)");
  // The run's own config.toml resumes it (train.threads may differ: it changes no number).
  EXPECT_EQ(run("train " + (k / "config.toml").string() + " train.threads=2 --resume " + k.string()).status, 0);
  // A truncated checkpoint is bad input naming the file.
  {
    const pid_t p2 = start("train " + args + " --out " + (d / "t").string());
    for (int i = 0; i < 20000 && !fs::exists(d / "t" / "checkpoint.safetensors"); ++i) std::this_thread::sleep_for(std::chrono::microseconds(500));
    kill(p2, SIGKILL);
    waitpid(p2, nullptr, 0);
    const fs::path c = d / "t" / "checkpoint.safetensors";
    ASSERT_TRUE(fs::exists(c));
    fs::resize_file(c, fs::file_size(c) / 2);
    expect_bad_input("train " + args + " --resume " + (d / "t").string(), c.string() + ": not a valid safetensors file: tensor '");
  }
  fs::remove_all(d);
}

TEST(Resume, DivergedRunKeepsItsLastGoodCheckpoint) {
  const fs::path d = fs::temp_directory_path() / ("attnlab_resume_div_" + std::to_string(getpid()));
  fs::remove_all(d);
  const auto r = run("train " + src("experiments/sparse_memory.toml") +
                     " train.optimizer=sgd train.momentum=0 train.lr=0.5 train.warmup=50 train.steps=200 train.eval_every=5"
                     " task.n_val=64 task.n_train=256 train.threads=1 train.lr_schedule=constant --out " + d.string());
  ASSERT_EQ(r.status, 0) << r.err;
  std::ifstream f(d / "summary.json");
  const auto s = nlohmann::json::parse(f);
  ASSERT_EQ(s["status"], "diverged") << s.dump();
  ASSERT_TRUE(fs::exists(d / "checkpoint.safetensors"));
  EXPECT_FALSE(fs::exists(d / "model.safetensors"));
  // The checkpoint holds finite parameters from before the divergence: `eval`-style loading
  // checks every value, and a resume continues from there (and diverges again, identically).
  const auto again = run("train " + (d / "config.toml").string() + " --resume " + d.string());
  EXPECT_EQ(again.status, 0) << again.err;
  std::ifstream g(d / "summary.json");
  const auto s2 = nlohmann::json::parse(g);
  EXPECT_EQ(s2["diverged_step"], s["diverged_step"]);
  EXPECT_EQ(s2["diverged_reason"], s["diverged_reason"]);
  fs::remove_all(d);
}

// A sweep killed while a run is half done continues that run from its checkpoint, and the
// run's results are those of an uninterrupted sweep.
TEST(Resume, SweepContinuesAKilledRunFromItsCheckpoint) {
  const fs::path base = fs::temp_directory_path() / ("attnlab_resume_sweep_" + std::to_string(getpid()));
  fs::remove_all(base);
  fs::create_directories(base);
  {
    std::ifstream in(src("tests/data/tiny_sweep.toml"));
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    text.replace(text.find("steps = 600"), 11, "steps = 3000");  // long enough to be caught with a checkpoint
    std::ofstream(base / "spec.toml") << text;
  }
  const std::string spec = (base / "spec.toml").string();
  auto start_sweep = [&](const fs::path& out) { return start("sweep " + spec + " -j 2 --out " + out.string()); };
  int st = 0;
  waitpid(start_sweep(base / "ref"), &st, 0);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  // Kill the sweep when some run has written a checkpoint.
  const fs::path out = base / "killed";
  const pid_t pid = start_sweep(out);
  fs::path caught;
  for (int i = 0; i < 40000 && caught.empty(); ++i) {
    if (fs::exists(out / "runs"))
      for (const auto& e : fs::directory_iterator(out / "runs"))
        if (fs::exists(e.path() / "checkpoint.safetensors")) caught = e.path();
    if (caught.empty()) std::this_thread::sleep_for(std::chrono::microseconds(250));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  ASSERT_FALSE(caught.empty()) << "no run was caught with a checkpoint";
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the worker dies with the sweep
  waitpid(start_sweep(out), &st, 0);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  std::ifstream log(caught / "log.txt");
  std::stringstream ls;
  ls << log.rdbuf();
  EXPECT_NE(ls.str().find("resuming " + caught.string() + " from step "), std::string::npos) << ls.str();
  const fs::path ref_run = base / "ref" / "runs" / caught.filename();
  EXPECT_TRUE(metrics_without_time(caught) == metrics_without_time(ref_run));
  EXPECT_TRUE(summary_without_time(caught) == summary_without_time(ref_run));
  fs::remove_all(base);
}
