// Experiment specs, the sweep runner and the store: expansion, resumption after SIGKILL,
// no run twice, results equal to an uninterrupted sweep.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "analysis/claims.h"
#include "cli_run.h"
#include "core/error.h"
#include "core/rng.h"
#include "io/config.h"
#include "sweep/spec.h"
#include "sweep/store.h"
#include "train/bench.h"

using namespace attnlab;
namespace fs = std::filesystem;

namespace {
std::string spec_path() { return std::string(ATTNLAB_SOURCE_DIR) + "/tests/data/tiny_sweep.toml"; }

// Summaries without timing fields.
std::map<std::string, std::string> results(const std::string& dir) {
  Store s((fs::path(dir) / "runs.db").string());
  std::map<std::string, std::string> out;
  for (const auto& r : s.runs()) {
    nlohmann::json j = r.summary.empty() ? nlohmann::json() : nlohmann::json::parse(r.summary);
    for (const char* k : {"wall_s", "train_s", "tokens_per_s", "ms_per_step"})
      if (j.is_object()) j.erase(k);
    out[r.id] = r.status + " " + j.dump();
  }
  return out;
}

pid_t start_sweep(const std::string& out) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open("/dev/null", O_WRONLY);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(ATTNLAB_BINARY, "attnlab", "sweep", spec_path().c_str(), "-j", "2", "--out", out.c_str(), nullptr);
    _exit(127);
  }
  return pid;
}

int run_sweep_to_end(const std::string& out) {
  int st = 0;
  waitpid(start_sweep(out), &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace

TEST(Spec, GridZipAndSeedsExpandToExactlyTheExpectedRuns) {
  const auto spec = load_spec(spec_path(), "");
  const auto runs = expand(spec);
  ASSERT_EQ(runs.size(), 3u * 2u * 2u);  // zip (heads, head_dim) x rpe x seeds
  std::set<std::string> ids;
  std::set<std::tuple<std::string, std::string, std::string, int64_t>> combos;
  for (const auto& r : runs) {
    ids.insert(r.id);
    combos.insert({r.point.at("model.heads"), r.point.at("model.head_dim"), r.point.at("model.rpe"), r.seed});
    // zipped: heads * head_dim = 8 always
    EXPECT_EQ(std::stoi(r.point.at("model.heads")) * std::stoi(r.point.at("model.head_dim")), 8);
    EXPECT_EQ(r.overrides.back(), "seed=" + std::to_string(r.seed));
  }
  EXPECT_EQ(ids.size(), runs.size());
  EXPECT_EQ(combos.size(), runs.size());
  EXPECT_TRUE(combos.count({"4", "2", "\"t5\"", 2}));
  const auto quick = expand(load_spec(spec_path(), "quick"));
  EXPECT_EQ(quick.size(), 6u);  // the quick scale keeps one seed
  EXPECT_EQ(spec.figures.size(), 1u);
  EXPECT_EQ(spec.claims.size(), 1u);
}

TEST(Spec, BadSpecsAreUserErrors) {
  const fs::path d = fs::temp_directory_path() / "attnlab_badspec";
  fs::create_directories(d);
  auto error_of = [&](const std::string& text) -> std::string {
    { std::ofstream f(d / "s.toml"); f << text; }
    try { load_spec((d / "s.toml").string(), ""); } catch (const UserError& e) { return e.what(); }
    return "(no error)";
  };
  const std::string head = "[experiment]\nname = \"x\"\nresult = \"p3\"\n[base.task]\nkind = \"sparse_memory\"\n";
  EXPECT_EQ(error_of(head + "[sweep]\n\"model.heads\" = [1, 2]\n\"model.head_dim\" = [4]\nzip = [[\"model.heads\", \"model.head_dim\"]]\n"),
            (d / "s.toml").string() + ": sweep.zip: the lists of model.heads and model.head_dim differ in length (2 vs 1)");
  EXPECT_EQ(error_of("[experiment]\nname = \"x\"\nresult = \"p4\"\n"),
            (d / "s.toml").string() + ": experiment.result: 'p4' is not allowed (allowed: p1, p2, p3)");
  EXPECT_EQ(error_of(head + "[[claim]]\nkind = \"steep\"\nx = \"a\"\ny = \"b\"\nexpect = 1\n"),
            (d / "s.toml").string() + ": claim[0].kind: 'steep' is not allowed (allowed: slope, flat, monotone, compare, ratio, plateau, optimum, level, crossing)");
  EXPECT_EQ(error_of(head + "[[claim]]\nkind = \"crossing\"\nx = \"task.n\"\ny = \"e\"\nacross = \"model.width\"\nlevel = 0.1\n"
                           "a = { \"model.rpe\" = \"lin\" }\nexpect = [0, 1]\n"),
            (d / "s.toml").string() + ": claim[0]: crossing compares two selections with both a = {...} and b = {...}");
  // A claim or figure selecting a value the scale does not run: caught before any run.
  const std::string grid = head + "[sweep]\n\"model.ffn\" = [4, 16]\n[scale.quick]\n\"model.ffn\" = [4, 128]\n";
  const std::string cmp = "[[claim]]\nkind = \"compare\"\ny = \"e\"\na = { \"model.ffn\" = 4 }\nb = { \"model.ffn\" = 128 }\nexpect = 0\n";
  EXPECT_EQ(error_of(grid + cmp), (d / "s.toml").string() + ": claim[0].b: model.ffn = 128 is not a value of the sweep (its values: 4, 16)");
  { std::ofstream f(d / "s.toml"); f << grid + cmp; }
  EXPECT_NO_THROW(load_spec((d / "s.toml").string(), "quick"));
  EXPECT_EQ(error_of(grid + "[[figure]]\nx = \"model.ffn\"\ny = \"e\"\nwhere = { \"model.ffn\" = 5 }\n"),
            (d / "s.toml").string() + ": figure[0].where: model.ffn = 5 is not a value of the sweep (its values: 4, 16)");
  // A value the base sweep runs but the scale does not (16 at quick) is for the other scale:
  // no error; the claim and the figure are marked, and the claim is n/a with that note.
  { std::ofstream f(d / "s.toml"); f << grid + "[[claim]]\nkind = \"level\"\ny = \"e\"\nwhere = { \"model.ffn\" = 16 }\nexpect = [0, 1]\n"
                                           "[[figure]]\nx = \"model.ffn\"\ny = \"e\"\nwhere = { \"model.ffn\" = 16 }\n"; }
  const ExperimentSpec quick = load_spec((d / "s.toml").string(), "quick");
  EXPECT_EQ(quick.claims.at(0).not_at_scale, "model.ffn = 16 is not run at scale quick");
  EXPECT_EQ(quick.figures.at(0).not_at_scale, "model.ffn = 16 is not run at scale quick");
  EXPECT_EQ(load_spec((d / "s.toml").string(), "").claims.at(0).not_at_scale, "");
  std::vector<Observation> obs(1);
  obs[0].point = {{"model.ffn", "4"}};
  obs[0].status = "completed";
  obs[0].summary = {{"e", 0.5}};
  const auto r = evaluate_claims(quick, obs);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].verdict(), "n/a");
  EXPECT_EQ(r[0].note, "model.ffn = 16 is not run at scale quick");
}

// The progress lines in a log (stderr not a terminal): one per finished run, counting the runs
// in flight after the freed slot is refilled: with -j 2 and runs left to start, 2 are running.
TEST(Sweep, ProgressLinesCountTheRunsInFlight) {
  const fs::path d = fs::temp_directory_path() / ("attnlab_progress_" + std::to_string(getpid()));
  fs::remove_all(d);
  const auto r = cli_test::run("sweep " + spec_path() + " --scale quick -j 2 --out " + d.string());
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream lines(r.err);
  std::string line;
  std::vector<std::pair<int, int>> seen;  // (done, running)
  while (std::getline(lines, line)) {
    int done = 0, total = 0, running = 0;
    const auto at = line.find(": ");
    if (at != std::string::npos && std::sscanf(line.c_str() + at + 2, "%d/%d runs done, %d running", &done, &total, &running) == 3) {
      EXPECT_EQ(total, 6) << line;
      seen.emplace_back(done, running);
    }
  }
  ASSERT_FALSE(seen.empty()) << r.err;
  for (const auto& [done, running] : seen)
    if (done >= 1 && done <= 4) EXPECT_EQ(running, 2) << "after " << done << " of 6 runs:\n" << r.err;
  EXPECT_EQ(seen.back(), std::make_pair(6, 0)) << r.err;
  fs::remove_all(d);
}

TEST(Sweep, SurvivesSigkillAndMatchesAnUninterruptedSweep) {
  const fs::path base = fs::temp_directory_path() / ("attnlab_sweep_" + std::to_string(getpid()));
  fs::remove_all(base);
  const std::string ref = (base / "ref").string(), killed = (base / "killed").string();
  ASSERT_EQ(run_sweep_to_end(ref), 0);
  const auto want = results(ref);
  ASSERT_EQ(want.size(), 12u);
  for (const auto& [id, r] : want) EXPECT_EQ(r.rfind("completed", 0), 0u) << id;

  // Kill the sweep at several moments while runs are unfinished (after 1, 3, 5 and 7 runs
  // are done, and a pseudo-random few milliseconds: a whole run takes about 80 ms), then
  // let a rerun finish.
  auto completed = [&]() {
    if (!fs::exists(fs::path(killed) / "runs.db")) return 0;
    try {
      int done = 0;
      for (const auto& r : Store((fs::path(killed) / "runs.db").string(), true).runs()) done += r.status == "completed";
      return done;
    } catch (const UserError&) {
      return 0;  // being created
    }
  };
  int interrupted = 0;
  for (int k = 0; k < 4; ++k) {
    const pid_t pid = start_sweep(killed);
    for (int wait = 0; wait < 4000 && completed() < 1 + 2 * k; ++wait) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(rng_below(42, 0, uint64_t(k), 30)));
    kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_EQ(cli_test::processes_with(killed), 0) << "a worker outlived the killed sweep";
    if (fs::exists(fs::path(killed) / "runs.db")) {
      int done = 0;
      for (const auto& [id, r] : results(killed)) done += r.rfind("completed", 0) == 0;
      interrupted += done < 12;
    }
  }
  EXPECT_GE(interrupted, 2) << "the kills should land while runs are unfinished";
  ASSERT_EQ(run_sweep_to_end(killed), 0);
  const auto got = results(killed);
  EXPECT_EQ(got, want);
  // Every run once; each attempt counted (a killed run was retried, never run twice at once).
  Store s((fs::path(killed) / "runs.db").string());
  EXPECT_EQ(s.runs().size(), 12u);
  // A rerun of a finished sweep runs nothing.
  ASSERT_EQ(run_sweep_to_end(killed), 0);
  EXPECT_EQ(results(killed), want);
  fs::remove_all(base);
}

TEST(Store, TwoSweepsNeverClaimTheSameRun) {
  const fs::path base = fs::temp_directory_path() / ("attnlab_claims_" + std::to_string(getpid()));
  fs::remove_all(base);
  fs::create_directories(base);
  const auto runs = expand(load_spec(spec_path(), ""));
  const std::string db = (base / "runs.db").string();
  { Store s(db); s.add_runs("tiny_sweep", runs); }
  // Two live processes claim concurrently until nothing is left; their claims must be
  // disjoint. They stay alive until the parent has read both (a dead owner's runs would
  // rightly be claimable again).
  int fds[2][2], release[2];
  ASSERT_EQ(pipe(release), 0);
  pid_t pids[2];
  for (int p = 0; p < 2; ++p) {
    ASSERT_EQ(pipe(fds[p]), 0);
    pids[p] = fork();
    if (pids[p] == 0) {
      close(release[1]);
      Store s(db);
      std::string got;
      while (auto r = s.claim(Store::self_owner(), 0, 1)) got += r->id + "\n";
      (void)!write(fds[p][1], got.data(), got.size());
      close(fds[p][1]);
      char c;
      (void)!read(release[0], &c, 1);  // returns when the parent closes its end
      _exit(0);
    }
    close(fds[p][1]);
  }
  close(release[0]);
  std::multiset<std::string> claimed;
  for (int p = 0; p < 2; ++p) {
    std::string buf(1 << 16, '\0');
    std::string all;
    ssize_t n;
    while ((n = read(fds[p][0], buf.data(), buf.size())) > 0) all.append(buf.data(), size_t(n));
    std::istringstream ss(all);
    for (std::string l; std::getline(ss, l);) claimed.insert(l);
  }
  close(release[1]);
  for (int p = 0; p < 2; ++p) waitpid(pids[p], nullptr, 0);
  EXPECT_EQ(claimed.size(), runs.size());
  for (const auto& r : runs) EXPECT_EQ(claimed.count(r.id), 1u) << r.id;
  fs::remove_all(base);
}

// A bare dotted key (`model.heads = [...]`, which TOML reads as a table `model`) means the
// same as the quoted one, in [sweep], zip, [scale.*] and claims' a/b/where.
TEST(Spec, BareAndQuotedDottedKeysAreTheSame) {
  const fs::path d = fs::temp_directory_path() / ("attnlab_dotted_" + std::to_string(getpid()));
  fs::create_directories(d);
  const std::string head = "[experiment]\nname = \"x\"\nresult = \"p2\"\n[base]\nseed = 1\n[base.task]\nkind = \"sparse_memory\"\n"
                           "[base.model]\nd_model = 16\n[base.train]\nlr = 0.002\nsteps = 100\n";
  auto spec = [&](bool quoted) {
    auto k = [&](const std::string& key) { return quoted ? "\"" + key + "\"" : key; };
    return head + "[sweep]\n" + k("model.heads") + " = [1, 2]\n" + k("model.head_dim") + " = [8, 4]\n" + k("model.rpe") +
           " = [\"none\", \"t5\"]\nzip = [[\"model.heads\", \"model.head_dim\"]]\nseeds = [1, 2]\n"
           "[scale.quick]\n" + k("train.steps") + " = 7\n" + k("model.rpe") + " = [\"none\", \"t5\", \"log\"]\nseeds = [3]\n"
           "[[claim]]\nkind = \"compare\"\ny = \"min_val_loss\"\na = { " + k("model.rpe") + " = \"t5\" }\nb = { " + k("model.rpe") +
           " = \"none\" }\nwhere = { " + k("model.heads") + " = 2 }\nexpect = 0.0\n";
  };
  std::vector<std::string> ids[2], quick[2];
  for (int q = 0; q < 2; ++q) {
    const fs::path p = d / (q ? "quoted.toml" : "bare.toml");
    { std::ofstream f(p); f << spec(q == 1); }
    const auto s = load_spec(p.string(), "");
    for (const auto& r : expand(s)) ids[q].push_back(r.id + " " + nlohmann::json(r.overrides).dump());
    ASSERT_EQ(s.claims.size(), 1u);
    EXPECT_EQ(s.claims[0].a.at("model.rpe"), "\"t5\"");
    EXPECT_EQ(s.claims[0].b.at("model.rpe"), "\"none\"");
    EXPECT_EQ(s.claims[0].where.at("model.heads"), "2");
    for (const auto& r : expand(load_spec(p.string(), "quick"))) quick[q].push_back(r.id);
    // The scale's non-axis key sets train.steps alone: the base's train.lr stays.
    const RunConfig c = load_run_config(p.string(), {}, "quick");
    EXPECT_EQ(c.train.steps, 7);
    EXPECT_DOUBLE_EQ(c.train.lr, 0.002);
  }
  EXPECT_EQ(ids[0].size(), 2u * 2u * 2u);
  EXPECT_EQ(ids[0], ids[1]);
  EXPECT_EQ(quick[0], quick[1]);
  EXPECT_EQ(quick[0].size(), 6u);  // zip x rpe = ["none", "t5", "log"] x seeds = [3]
  fs::remove_all(d);
}

// Every run of every built-in experiment, at every scale, has a valid config (each task
// family and model kind accepts only its own keys).
TEST(Spec, EveryBuiltInRunConfigLoads) {
  int runs = 0;
  for (const auto& e : fs::directory_iterator(std::string(ATTNLAB_SOURCE_DIR) + "/experiments")) {
    if (e.path().extension() != ".toml") continue;
    const std::string path = e.path().string();
    std::ifstream f(path);
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (text.find("[experiment]") == std::string::npos) {
      EXPECT_NO_THROW(load_run_config(path, {})) << path;
      continue;
    }
    for (const std::string scale : {"", "quick", "full"}) {
      if (!scale.empty() && text.find("[scale." + scale + "]") == std::string::npos) continue;
      for (const auto& r : expand(load_spec(path, scale))) {
        EXPECT_NO_THROW(load_run_config(path, r.overrides, scale)) << path << " " << scale << " " << r.id;
        ++runs;
      }
    }
  }
  EXPECT_GT(runs, 100);
}

TEST(Store, AZombieHoldsNoRun) {
  // A sweep killed with its parent gone stays a zombie where PID 1 does not reap (some
  // containers): its claims must be free to take, as a dead process's are.
  EXPECT_TRUE(Store::owner_alive(Store::self_owner()));
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string me = Store::self_owner();
    if (write(fds[1], me.data(), me.size()) < 0) _exit(1);
    _exit(0);
  }
  close(fds[1]);
  char buf[128] = {0};
  ASSERT_GT(read(fds[0], buf, sizeof buf - 1), 0);
  close(fds[0]);
  const std::string owner = buf;
  // wait until it has exited (a zombie: not reaped yet)
  std::string state;
  for (int i = 0; i < 2000 && state != "Z"; ++i) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s;
    std::getline(f, s);
    state = s.size() > s.rfind(')') + 2 ? s.substr(s.rfind(')') + 2, 1) : "";
    if (state != "Z") std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(state, "Z");
  EXPECT_FALSE(Store::owner_alive(owner)) << owner;
  waitpid(pid, nullptr, 0);
  EXPECT_FALSE(Store::owner_alive(owner)) << owner;
}

// The costliest runs are claimed first (a sweep with -j 2 must not end on its longest run
// alone), ties in spec order; the cost is the run's estimated training FLOPs.
TEST(Store, ClaimsTheCostliestRunsFirst) {
  const fs::path base = fs::temp_directory_path() / ("attnlab_cost_" + std::to_string(getpid()));
  fs::remove_all(base);
  fs::create_directories(base);
  auto runs = expand(load_spec(spec_path(), ""));
  ASSERT_GE(runs.size(), 4u);
  const std::vector<double> costs = {1e9, 5e12, 5e12, 2e11};
  for (size_t i = 0; i < runs.size(); ++i) runs[i].cost = i < costs.size() ? costs[i] : 0.0;
  Store s((base / "runs.db").string());
  s.add_runs("tiny_sweep", runs);
  std::vector<std::string> order;
  while (auto r = s.claim(Store::self_owner(), 0, 1)) order.push_back(r->id);
  ASSERT_EQ(order.size(), runs.size());
  EXPECT_EQ(order[0], runs[1].id);
  EXPECT_EQ(order[1], runs[2].id);
  EXPECT_EQ(order[2], runs[3].id);
  EXPECT_EQ(order[3], runs[0].id);
  fs::remove_all(base);

  // The estimate: 3x the forward FLOPs per sequence, times batch and steps.
  RunConfig c = load_run_config(spec_path(), {}, "");
  const double one = estimated_run_flops(c);
  EXPECT_NEAR(one, 3.0 * transformer_forward_flops(c.model, c.task.seq_len) * c.train.batch * c.train.steps, 1e-6 * one);
  c.train.steps *= 2;
  EXPECT_NEAR(estimated_run_flops(c), 2 * one, 1e-6 * one);
}
