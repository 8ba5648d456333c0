#pragma once
// The sweep runner: expands a spec, registers its runs in DIR/runs.db, and executes the
// runs it can claim as child processes (`attnlab train`), at most `jobs` at a time, each
// with cores/jobs threads. Children die with the runner (PR_SET_PDEATHSIG), so a killed
// sweep leaves no orphan writing; rerunning the same command resumes. Each child is a process
// group of its own: the terminal's Ctrl-C reaches the sweep, which decides (the command line
// dies and its children with it; the Python module stops them and releases their runs).
#include <functional>
#include <string>
#include <vector>

namespace attnlab {

struct SweepOptions {
  std::string spec_path, scale, out;
  int jobs = 0;  // 0 = one job per core... (capped by the number of runs)
  int shard_i = 0, shard_n = 1;
  // A store whose runs were registered with other resolved configs than the spec now gives
  // (or holds runs the spec no longer has) is an error naming the first changed key; with
  // this set, exactly those runs are discarded and the changed ones rerun.
  bool rerun_changed = false;
  bool list_only = false;  // expand and check the runs, list them (SweepResult::listed), run nothing
  std::string self_exe = "/proc/self/exe";
  // Called about every 50 ms while runs are live (the Python module asks the interpreter about
  // Ctrl-C). It may throw to stop the sweep: the live runs are then stopped (SIGTERM), keep
  // their last checkpoints, and are released in the store, so that the same sweep called again
  // resumes them; the exception then leaves run_sweep. Without it the runner blocks in wait.
  std::function<void()> check;
};

struct SweepProgress {
  int total = 0, done = 0, running = 0, diverged = 0, failed = 0;
  double elapsed_s = 0, eta_s = 0;
  std::string best;  // "y=... at point" of the finished runs
};

struct SweepResult {
  int total = 0, completed = 0, diverged = 0, failed = 0, skipped = 0;
  int discarded = 0, retried = 0;  // runs discarded by --rerun-changed; failed runs retried
  int ranks = 1;                   // MPI ranks the runs were spread over
  std::vector<std::string> listed;  // list_only: the ids of this shard's runs, in order
  double wall_s = 0;
};

SweepResult run_sweep(const SweepOptions& opt, const std::function<void(const SweepProgress&)>& on_progress);

}  // namespace attnlab
