// Beyond one machine. attnlab under mpirun (OpenMPI): data-parallel training equals one process with the same
// global batch (to 1e-5 relative, the bound), a sweep spread over ranks equals a sweep
// on one machine, errors stay one line with exit status 2, and a job stopped by the
// scheduler (SIGTERM to mpirun, as Slurm preempts) resumes to the same results. Slurm job
// array shards merged equal one sweep.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "cli_run.h"
#include "sweep/spec.h"
#include "sweep/store.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string src(const std::string& rel) { return std::string(ATTNLAB_SOURCE_DIR) + "/" + rel; }

// The mpirun command line: root may run it here (tests and CI run as root); an idle rank
// yields its core (ctest runs two tests at once on two cores); --oversubscribe lets a test use
// more ranks than cores. The sanitizer build's ranks keep ASan but not its leak report: the
// MPI library's own allocations at exit are not ours.
std::string mpirun(int np) {
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  return "env ASAN_OPTIONS=detect_leaks=0 mpirun --oversubscribe --mca mpi_yield_when_idle 1 -np " + std::to_string(np) + " " +
         ATTNLAB_BINARY + " ";
}

cli_test::Result sh(const std::string& cmd) {
  const fs::path tmp = cli_test::scratch_dir("mpi_sh");
  const std::string out = (tmp / "out.txt").string(), err = (tmp / "err.txt").string();
  const int st = std::system((cmd + " >" + out + " 2>" + err + " </dev/null").c_str());
  cli_test::Result r;
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  auto slurp = [](const std::string& p) { std::ifstream f(p); std::stringstream s; s << f.rdbuf(); return s.str(); };
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

std::vector<json> metrics(const fs::path& dir) {
  std::ifstream f(dir / "metrics.jsonl");
  std::vector<json> out;
  for (std::string line; std::getline(f, line);) out.push_back(json::parse(line));
  return out;
}

json summary(const fs::path& dir) {
  std::ifstream f(dir / "summary.json");
  return json::parse(f);
}

double rel(double a, double b) { return std::abs(a - b) / std::max({std::abs(a), std::abs(b), 1e-30}); }

// Every number of the two runs' metrics.jsonl and summary.json agrees to `tol` relative
// (timings aside); returns the largest relative difference seen.
double compare_runs(const fs::path& one, const fs::path& two, double tol, double& other) {
  const auto m1 = metrics(one), m2 = metrics(two);
  EXPECT_EQ(m1.size(), m2.size());
  EXPECT_GE(m1.size(), 5u);
  double worst = 0;
  auto check = [&](const std::string& where, const json& a, const json& b) {
    if (!a.is_number() || !b.is_number()) {
      EXPECT_EQ(a, b) << where;
      return;
    }
    const double d = rel(a.get<double>(), b.get<double>());
    worst = std::max(worst, d);
    EXPECT_LE(d, tol) << where << ": " << a << " vs " << b;
  };
  for (size_t i = 0; i < std::min(m1.size(), m2.size()); ++i)
    for (const char* k : {"step", "train_loss", "val_loss"})
      check(one.string() + " metrics line " + std::to_string(i) + " " + k, m1[i][k], m2[i][k]);
  json s1 = summary(one), s2 = summary(two);
  EXPECT_EQ(s2.value("ranks", 0), 2);
  EXPECT_FALSE(s1.contains("ranks"));
  for (const char* k : {"wall_s", "train_s", "tokens_per_s", "ms_per_step", "threads", "ranks"}) s1.erase(k), s2.erase(k);
  for (auto it = s1.begin(); it != s1.end(); ++it) {
    if (it.key() == "heads") continue;  // per-head probes: compared through their aggregates
    EXPECT_TRUE(s2.contains(it.key())) << it.key();
    // the losses to `tol`; the gradient norms and attention probes are reported (AdamW moves a
    // coordinate whose gradient is near zero by about lr whatever its sign, so the rounding of
    // a sum in another order shows there more than in the loss)
    if (!s2.contains(it.key())) continue;
    if (it.key().find("loss") != std::string::npos || it.key().find("_rel") != std::string::npos) {
      check("summary " + it.key(), it.value(), s2[it.key()]);
    } else if (it.value().is_number()) {
      const double dd = rel(it.value().get<double>(), s2[it.key()].get<double>());
      other = std::max(other, dd);
      EXPECT_LE(dd, 1e-2) << "summary " << it.key();
    } else {
      EXPECT_EQ(it.value(), s2[it.key()]) << it.key();
    }
  }
  EXPECT_EQ(s1.size(), s2.size());
  return worst;
}

}  // namespace

TEST(Mpi, TwoRanksTrainAsOneProcessWithTheGlobalBatch) {
  const fs::path d = cli_test::scratch_dir("mpi_train");
  // Minibatch AdamW (warmup, cosine, clipping) on a Transformer; and paper 3's full-batch
  // projected GD, whose whole training set is split over the ranks; a validation pass every
  // step there (the evaluation is split over the ranks too).
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"transformer",
       src("experiments/sparse_memory.toml") +
           " train.steps=200 train.eval_every=20 train.warmup=30 train.grad_clip=0.5 task.n_val=64 task.n_train=256"
           " task.seq_len=48 model.d_model=32 model.ffn=64"},
      {"p3_projected_gd", src("experiments/p3_e1_width.toml") + " --scale quick model.width=16 task.n=1000 train.steps=100 train.eval_every=10"},
  };
  for (const auto& [name, args] : cases) {
    const auto one = cli_test::run("train " + args + " train.threads=1 --out " + (d / (name + "_1")).string());
    ASSERT_EQ(one.status, 0) << one.err;
    const auto two = sh(mpirun(2) + "train " + args + " --out " + (d / (name + "_2")).string());
    ASSERT_EQ(two.status, 0) << two.err;
    EXPECT_NE(two.err.find("data parallel over 2 MPI ranks"), std::string::npos) << two.err;
    EXPECT_EQ(std::count(two.out.begin(), two.out.end(), '\n'), 1) << "rank 0 alone prints the result line:\n" << two.out;
    double other = 0;
    const double worst = compare_runs(d / (name + "_1"), d / (name + "_2"), 1e-5, other);
    std::printf("  %s: 2 ranks vs 1 process, largest relative difference of a loss %.2e (of the other summary numbers %.2e)\n",
                name.c_str(), worst, other);
  }
}

TEST(Mpi, ThreeRanksSplitABatchUnevenly) {
  // 32 rows over 3 ranks: 10, 11 and 11, weighted by their share of the loss's positions.
  const fs::path d = cli_test::scratch_dir("mpi_three");
  const std::string args = src("experiments/sparse_memory.toml") +
                           " train.steps=60 train.eval_every=10 task.n_val=48 task.n_train=256 task.seq_len=40 model.d_model=16"
                           " model.ffn=32 train.threads=1";
  ASSERT_EQ(cli_test::run("train " + args + " --out " + (d / "one").string()).status, 0);
  const auto three = sh(mpirun(3) + "train " + args + " --out " + (d / "three").string());
  ASSERT_EQ(three.status, 0) << three.err;
  const auto m1 = metrics(d / "one"), m3 = metrics(d / "three");
  ASSERT_EQ(m1.size(), m3.size());
  for (size_t i = 0; i < m1.size(); ++i) {
    EXPECT_LE(rel(m1[i]["train_loss"], m3[i]["train_loss"]), 1e-5) << i;
    EXPECT_LE(rel(m1[i]["val_loss"], m3[i]["val_loss"]), 1e-5) << i;
  }
  EXPECT_EQ(summary(d / "three").value("ranks", 0), 3);
}

TEST(Mpi, ErrorsAreOneLineAndExitStatusTwo) {
  const fs::path d = cli_test::scratch_dir("mpi_errors");
  auto our_lines = [](const std::string& err) {
    int n = 0;
    std::istringstream in(err);
    for (std::string l; std::getline(in, l);) n += l.rfind("attnlab", 0) == 0;
    return n;
  };
  // The same bad config on every rank: rank 0 says it once.
  auto r = sh(mpirun(2) + "train " + src("experiments/sparse_memory.toml") + " train.hedas=1 --out " + (d / "a").string());
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(our_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("attnlab: error: command line: train.hedas: unknown key"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(d / "a"));
  // More ranks than rows.
  r = sh(mpirun(3) + "train " + src("experiments/sparse_memory.toml") + " train.batch=2 --out " + (d / "b").string());
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(our_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("attnlab: error: train.batch: 2 rows cannot be split over 3 MPI ranks (fewer rows than ranks)"),
            std::string::npos)
      << r.err;
  // A subcommand that is not spread over ranks.
  r = sh(mpirun(2) + "plan --help-not-an-option");
  EXPECT_EQ(r.status, 2);
  r = sh(mpirun(2) + "report " + d.string());
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(our_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("attnlab: error: report runs as one process; under mpirun (2 ranks) only train, sweep and reproduce are spread over ranks"),
            std::string::npos)
      << r.err;
}

namespace {
// A store's runs and metrics without timings (started, finished, wall_s, the owner's pid and
// the timing fields of summaries and metrics lines).
std::map<std::string, std::string> store_contents(const fs::path& dir) {
  attnlab::Store s((dir / "runs.db").string(), true);
  std::map<std::string, std::string> out;
  for (const auto& r : s.runs()) {
    json j = r.summary.empty() ? json() : json::parse(r.summary);
    for (const char* k : {"wall_s", "train_s", "tokens_per_s", "ms_per_step"})
      if (j.is_object()) j.erase(k);
    std::string m;
    for (const auto& line : s.metrics(r.id)) {
      json l = json::parse(line);
      l.erase("wall_s");
      m += l.dump() + "\n";
    }
    out[r.id] = r.status + "|" + j.dump() + "|" + r.config + "|" + r.planned + "|" + r.error + "|" + m;
  }
  return out;
}
}  // namespace

TEST(Mpi, SweepOverTwoRanksEqualsOneMachineAndResumesAfterPreemption) {
  const fs::path d = cli_test::scratch_dir("mpi_sweep");
  // The tiny sweep with runs long enough (2400 steps, about 0.2 s each) for a signal to land
  // while they train.
  const std::string spec = (d / "spec.toml").string();
  {
    std::ifstream in(src("tests/data/tiny_sweep.toml"));
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    const size_t at = text.find("steps = 600");
    ASSERT_NE(at, std::string::npos);
    text.replace(at, 11, "steps = 2400");
    std::ofstream(spec) << text;
  }
  ASSERT_EQ(cli_test::run("sweep " + spec + " -j 2 --out " + (d / "one").string()).status, 0);
  const auto two = sh(mpirun(2) + "sweep " + spec + " --out " + (d / "two").string());
  ASSERT_EQ(two.status, 0) << two.err;
  EXPECT_NE(two.out.find("sweep: 12 runs: 12 completed, 0 diverged, 0 failed in "), std::string::npos) << two.out;
  EXPECT_NE(two.out.find(" over 2 MPI ranks -> "), std::string::npos) << two.out;
  const auto want = store_contents(d / "one");
  ASSERT_EQ(want.size(), 12u);
  EXPECT_EQ(store_contents(d / "two"), want);
  // Both ranks ran runs (each run's log names its rank).
  std::set<std::string> ranks;
  for (const auto& e : fs::directory_iterator(d / "two" / "runs")) {
    std::ifstream f(e.path() / "log.txt");
    std::string first;
    std::getline(f, first);
    const size_t at = first.find(" on MPI rank ");
    ASSERT_NE(at, std::string::npos) << first;
    ranks.insert(first.substr(at, 15));
  }
  EXPECT_EQ(ranks.size(), 2u);

  // Preemption: the scheduler sends SIGTERM to the job; the same command then continues.
  const fs::path pre = d / "preempted";
  int stopped_early = 0;
  for (int k = 0; k < 2; ++k) {
    std::istringstream words(mpirun(2) + "sweep " + spec + " --out " + pre.string());
    std::vector<std::string> w;
    for (std::string x; words >> x;) w.push_back(x);
    const pid_t pid = fork();
    if (pid == 0) {
      const int fd = open("/dev/null", O_WRONLY);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& x : w) argv.push_back(x.data());
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());  // env ... mpirun ... attnlab sweep ...
      _exit(127);
    }
    // stop it once a run is training with a checkpoint written (as a preemption might)
    auto mid_run = [&]() {
      std::error_code ec;
      if (!fs::exists(pre / "runs", ec)) return false;
      for (const auto& e : fs::directory_iterator(pre / "runs", ec))
        if (fs::exists(e.path() / "checkpoint.safetensors", ec) && !fs::exists(e.path() / "summary.json", ec)) return true;
      return false;
    };
    for (int i = 0; i < 4000 && !mid_run(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(100 * k));
    kill(pid, SIGTERM);  // env has exec'd mpirun: the same process
    int st = 0;
    waitpid(pid, &st, 0);
    // the ranks and their runs end with the job (a loaded machine may take a moment)
    for (int i = 0; i < 100 && cli_test::processes_with(pre.string()) > 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(cli_test::processes_with(pre.string()), 0) << "a process outlived the stopped job";
    if (fs::exists(pre / "runs.db")) {
      int done = 0;
      for (const auto& r : attnlab::Store((pre / "runs.db").string(), true).runs()) done += r.status == "completed";
      stopped_early += done < 12;
    }
  }
  EXPECT_GE(stopped_early, 1) << "the SIGTERM should land while runs are unfinished";
  const auto again = sh(mpirun(2) + "sweep " + spec + " --out " + pre.string());
  ASSERT_EQ(again.status, 0) << again.err;
  // every run done by now: none held by the stopped job (its rank 0 may linger as a zombie
  // where nothing reaps it)
  EXPECT_NE(again.out.find("sweep: 12 runs: 12 completed, 0 diverged, 0 failed in "), std::string::npos) << again.out;
  EXPECT_EQ(store_contents(pre), want);
  // Runs that were training when the job stopped continued from their checkpoints.
  int resumed = 0;
  for (const auto& e : fs::directory_iterator(pre / "runs")) {
    std::ifstream f(e.path() / "log.txt");
    std::stringstream ss;
    ss << f.rdbuf();
    resumed += ss.str().find("resuming ") != std::string::npos;
  }
  EXPECT_GE(resumed, 1);
  std::printf("  stopped by SIGTERM twice; %d run(s) resumed from a checkpoint; the store equals one machine's\n", resumed);
}

TEST(Cluster, ShardsMergedEqualASweepOnOneMachine) {
  // As Slurm job array tasks would: each shard its own directory, then attnlab merge.
  const fs::path d = cli_test::scratch_dir("shards");
  const std::string spec = src("tests/data/tiny_sweep.toml");
  ASSERT_EQ(cli_test::run("sweep " + spec + " -j 2 --out " + (d / "one").string()).status, 0);
  std::string shards;
  for (int i = 0; i < 3; ++i) {
    const std::string out = (d / ("shard" + std::to_string(i))).string();
    const auto r = cli_test::run("sweep " + spec + " -j 2 --shard " + std::to_string(i) + "/3 --out " + out);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("sweep: 4 runs: 4 completed"), std::string::npos) << r.out;
    shards += " " + out;
  }
  const auto m = cli_test::run("merge " + (d / "merged").string() + shards);
  ASSERT_EQ(m.status, 0) << m.err;
  EXPECT_EQ(m.out, "merge: 12 runs added -> " + (d / "merged").string() + "/runs.db\n");
  const auto want = store_contents(d / "one");
  ASSERT_EQ(want.size(), 12u);
  EXPECT_EQ(store_contents(d / "merged"), want);
  attnlab::Store a((d / "one" / "runs.db").string(), true), b((d / "merged" / "runs.db").string(), true);
  for (const char* k : {"experiment", "scale", "spec", "spec_text", "title", "result"}) EXPECT_EQ(a.meta(k), b.meta(k)) << k;
  // Every run's files are in the merged directory.
  for (const auto& e : fs::directory_iterator(d / "one" / "runs"))
    EXPECT_TRUE(fs::exists(d / "merged" / "runs" / e.path().filename() / "model.safetensors")) << e.path().filename();
  // Merging a shard again adds nothing.
  const auto again = cli_test::run("merge " + (d / "merged").string() + shards);
  EXPECT_EQ(again.out, "merge: 0 runs added -> " + (d / "merged").string() + "/runs.db\n");
  EXPECT_EQ(store_contents(d / "merged"), want);

  // A run that failed in OUT and completed in a shard: the store takes the shard's record, and
  // the run's directory becomes the shard's (the failed run's files are not kept beside it).
  const fs::path fixed = d / "fixed", shard0 = d / "shard0";
  fs::copy(d / "merged", fixed, fs::copy_options::recursive);
  std::string id;
  {
    attnlab::Store s0((shard0 / "runs.db").string(), true);
    for (const auto& r : s0.runs())
      if (r.status == "completed") { id = r.id; break; }
  }
  ASSERT_FALSE(id.empty());
  const fs::path run = fs::path("runs") / attnlab::run_dir_name(id);
  {
    attnlab::Store f((fixed / "runs.db").string());
    ASSERT_TRUE(f.finish(id, "failed", "", "", {}, "exit status 1: boom", 1.0));
  }
  fs::remove_all(fixed / run);
  fs::create_directories(fixed / run);
  std::ofstream(fixed / run / "log.txt") << "boom\n";
  const auto m2 = cli_test::run("merge " + fixed.string() + " " + shard0.string());
  ASSERT_EQ(m2.status, 0) << m2.err;
  EXPECT_EQ(m2.out, "merge: 1 runs added -> " + fixed.string() + "/runs.db\n");
  EXPECT_EQ(store_contents(fixed), want);
  auto slurp = [](const fs::path& p) { std::ifstream f(p); std::stringstream ss; ss << f.rdbuf(); return ss.str(); };
  EXPECT_TRUE(fs::exists(fixed / run / "model.safetensors"));
  EXPECT_EQ(slurp(fixed / run / "summary.json"), slurp(shard0 / run / "summary.json"));
  EXPECT_EQ(slurp(fixed / run / "log.txt"), slurp(shard0 / run / "log.txt"));
  EXPECT_FALSE(fs::exists(fixed / (run.string() + ".merging")));
}

TEST(Mpi, ReproduceSpreadsEverySweepOverTheRanks) {
  // Two specs in a directory's experiments/ (reproduce reads ./experiments first): one after
  // the other over 2 ranks, each store equal to one machine's, and rank 0 writes the report.
  const fs::path d = cli_test::scratch_dir("mpi_reproduce");
  fs::create_directories(d / "experiments");
  std::ifstream in(src("tests/data/tiny_sweep.toml"));
  std::stringstream ss;
  ss << in.rdbuf();
  for (const std::string name : {"p2_a", "p2_b"}) {
    std::string text = ss.str();
    text.replace(text.find("name = \"tiny_sweep\""), 19, "name = \"" + name + "\"");
    std::ofstream(d / "experiments" / (name + ".toml")) << text;
  }
  const auto one = sh("cd " + d.string() + " && " + ATTNLAB_BINARY + " reproduce --only p2 -j 2 --out one");
  ASSERT_EQ(one.status, 0) << one.err;
  const auto two = sh("cd " + d.string() + " && " + mpirun(2) + "reproduce --only p2 --out two");
  ASSERT_EQ(two.status, 0) << two.err;
  EXPECT_NE(two.out.find("reproduce: 2 experiments at scale quick in "), std::string::npos) << two.out;
  for (const std::string name : {"p2_a", "p2_b"}) {
    const auto want = store_contents(d / "one" / name);
    EXPECT_EQ(want.size(), 6u) << name;
    EXPECT_EQ(store_contents(d / "two" / name), want) << name;
  }
  EXPECT_TRUE(fs::exists(d / "two" / "report" / "index.html"));
  EXPECT_TRUE(fs::exists(d / "two" / "report" / "claims.json"));
}
