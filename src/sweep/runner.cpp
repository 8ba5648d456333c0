#include "sweep/runner.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/dist.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/config.h"
#include "sweep/spec.h"
#include "sweep/store.h"
#include "train/bench.h"
#include "train/trainer.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream ss(s);
  for (std::string l; std::getline(ss, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

// Starts `attnlab train` for one run; its output goes to DIR/log.txt. The run trains on the
// resolved config registered in the store (DIR/planned.toml), not on the spec file, which
// may have been edited since the sweep started.
pid_t spawn(const SweepOptions& opt, const RunRow& r, const fs::path& dir, int threads, bool resume) {
  std::vector<std::string> args = {"attnlab", "train"};
  if (!r.planned.empty()) {
    write_file_atomic((dir / "planned.toml").string(), r.planned);
    args.push_back((dir / "planned.toml").string());
  } else {  // a store written before runs carried their config
    args.push_back(opt.spec_path);
    if (!opt.scale.empty()) { args.push_back("--scale"); args.push_back(opt.scale); }
    for (const auto& o : r.overrides) args.push_back(o);
  }
  args.push_back("train.threads=" + std::to_string(threads));
  args.push_back("--out");
  args.push_back(dir.string());
  if (resume) { args.push_back("--resume"); args.push_back(dir.string()); }
  const std::string log = (dir / "log.txt").string();
  // Without the MPI launcher's variables: under `mpirun attnlab sweep` a run is a plain
  // process of its own, not one more rank.
  std::vector<std::string> env = dist::child_environment();
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string banner;  // under MPI, the run's log says where it ran
  if (dist::size() > 1) {
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    banner = "sweep: run " + r.id + " on MPI rank " + std::to_string(dist::rank()) + " of " + std::to_string(dist::size()) +
             " (host " + host + ")\n";
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // die with the sweep
    if (getppid() != parent) _exit(1);
    setpgid(0, 0);  // not in the terminal's foreground group: its Ctrl-C goes to the sweep alone
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | (resume ? O_APPEND : O_TRUNC), 0644);
    if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); close(fd); }
    if (!banner.empty() && write(2, banner.data(), banner.size()) < 0) _exit(1);
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) { dup2(devnull, 0); close(devnull); }
    execve(opt.self_exe.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  return pid;
}

// A run's directory before its process starts: kept for a run that continues from its
// checkpoint (its sweep was killed: `train --resume` checks that the checkpoint was written for
// this run's config), emptied for a failed or new run. Returns whether the run resumes.
bool prepare_run_dir(const fs::path& dir, const RunRow& r) {
  std::error_code ec;
  const bool resume = r.status == "running" && !r.planned.empty() && fs::exists(checkpoint_path(dir.string()));
  if (!resume) fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  return resume;
}

// What a finished run's process left: its status, summary, config, metrics and error.
struct Outcome {
  std::string status = "failed", summary, config, error;
  std::vector<std::string> metrics;
  double wall_s = 0;
};

Outcome collect(const fs::path& dir, int st, double wall) {
  Outcome o;
  o.wall_s = wall;
  o.summary = slurp(dir / "summary.json");
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && !o.summary.empty()) {
    try {
      o.status = nlohmann::json::parse(o.summary).value("status", std::string("failed"));
    } catch (const nlohmann::json::exception&) {
      o.error = "summary.json is not valid JSON";
    }
    if (o.status != "completed" && o.status != "diverged") o.status = "failed";
  } else {
    const auto log = lines(slurp(dir / "log.txt"));
    const std::string how = WIFSIGNALED(st) ? "killed by signal " + std::to_string(WTERMSIG(st))
                                            : "exit status " + std::to_string(WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    o.error = log.empty() ? how : how + ": " + log.back();
  }
  o.config = slurp(dir / "config.toml");
  o.metrics = lines(slurp(dir / "metrics.jsonl"));
  return o;
}

// The runs this process has started, by pid: the run and when it started.
using Live = std::map<pid_t, std::pair<RunRow, std::chrono::steady_clock::time_point>>;

// Starts a run's process in its prepared directory and adds it to `live`.
void start_run(const SweepOptions& opt, const RunRow& r, int threads, Live& live) {
  const fs::path dir = fs::path(opt.out) / "runs" / run_dir_name(r.id);
  const bool resume = prepare_run_dir(dir, r);
  live[spawn(opt, r, dir, threads, resume)] = {r, std::chrono::steady_clock::now()};
}

// A child `pid` has exited with status `st`: if it was one of `live`, removes it and returns
// its run with what collect() read.
std::optional<std::pair<RunRow, Outcome>> take_finished(const SweepOptions& opt, Live& live, pid_t pid, int st) {
  auto it = live.find(pid);
  if (it == live.end()) return std::nullopt;
  const RunRow r = it->second.first;
  const double wall = seconds_since(it->second.second);
  live.erase(it);
  return std::make_pair(r, collect(fs::path(opt.out) / "runs" / run_dir_name(r.id), st, wall));
}

// Blocks until a child exits: its pid (its status in *st), 0 if a signal cut the wait short,
// -1 if no child is left. With `check`, polls instead, calling it every 50 ms (it may throw).
pid_t wait_child(int* st, const std::function<void()>& check = nullptr) {
  if (!check) {
    const pid_t pid = waitpid(-1, st, 0);
    return pid >= 0 ? pid : errno == EINTR ? 0 : -1;
  }
  for (auto last = std::chrono::steady_clock::now();;) {
    const pid_t pid = waitpid(-1, st, WNOHANG);
    if (pid != 0) return pid >= 0 ? pid : errno == EINTR ? 0 : -1;
    if (std::chrono::steady_clock::now() - last >= std::chrono::milliseconds(50)) {
      check();
      last = std::chrono::steady_clock::now();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// The sweep is stopping (SweepOptions::check threw): every live run gets SIGTERM (SIGKILL
// after 5 s), is reaped, and is released in the store, still "running" with its checkpoint,
// for the next sweep to resume.
void stop_live(Live& live, Store& store, const std::string& owner) {
  std::vector<std::string> ids;
  for (const auto& [pid, run] : live) {
    kill(pid, SIGTERM);
    ids.push_back(run.first.id);
  }
  const auto t0 = std::chrono::steady_clock::now();
  bool killed = false;
  while (!live.empty()) {
    int st = 0;
    const pid_t pid = waitpid(-1, &st, WNOHANG);
    if (pid > 0) { live.erase(pid); continue; }
    if (pid < 0 && errno != EINTR) break;
    if (!killed && std::chrono::steady_clock::now() - t0 > std::chrono::seconds(5)) {
      for (const auto& [p, run] : live) kill(p, SIGKILL);
      killed = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  store.release(ids, owner);
}

// The distributed sweep (`mpirun -np N attnlab sweep`): rank 0 owns the store and hands out
// runs; every other rank asks for one run per free job slot, runs it as a child process on its
// own cores, and sends back what collect() read. The run directories are written by the rank
// that runs them: --out must be a directory every rank sees (a cluster's shared file system).
enum Tag { kWant = 1, kRun = 2, kNone = 3, kDone = 4 };

std::string run_message(const RunRow& r) {
  return nlohmann::json{{"id", r.id}, {"status", r.status}, {"planned", r.planned}, {"overrides", r.overrides}}.dump();
}
RunRow run_from_message(const std::string& text) {
  const auto j = nlohmann::json::parse(text);
  RunRow r;
  r.id = j.at("id");
  r.status = j.at("status");
  r.planned = j.at("planned");
  r.overrides = j.at("overrides").get<std::vector<std::string>>();
  return r;
}
std::string done_message(const std::string& id, const Outcome& o) {
  return nlohmann::json{{"id", id}, {"status", o.status}, {"summary", o.summary}, {"config", o.config},
                        {"error", o.error}, {"metrics", o.metrics}, {"wall_s", o.wall_s}}.dump();
}
std::pair<std::string, Outcome> done_from_message(const std::string& text) {
  const auto j = nlohmann::json::parse(text);
  Outcome o;
  o.status = j.at("status");
  o.summary = j.at("summary");
  o.config = j.at("config");
  o.error = j.at("error");
  o.metrics = j.at("metrics").get<std::vector<std::string>>();
  o.wall_s = j.at("wall_s");
  return {j.at("id"), o};
}

// Cores of this sweep (of this rank, under mpirun): see dist::usable_cores.
int rank_cores() { return dist::usable_cores(); }

SweepResult run_sweep_worker(const SweepOptions& opt) {
  const int cores = rank_cores();
  const int jobs = std::max(1, opt.jobs > 0 ? opt.jobs : cores), threads = std::max(1, cores / jobs);
  Live live;
  bool none = false;
  SweepResult res;
  while (true) {
    while (!none && int(live.size()) < jobs) {
      dist::send(0, kWant, "");
      int tag = 0;
      const std::string text = dist::receive(0, -1, &tag);
      if (tag == kNone) { none = true; break; }
      start_run(opt, run_from_message(text), threads, live);
    }
    if (live.empty()) break;
    int st = 0;
    const pid_t pid = wait_child(&st);
    if (pid < 0) break;
    if (const auto f = take_finished(opt, live, pid, st)) {
      dist::send(0, kDone, done_message(f->first.id, f->second));
      ++res.completed;
    }
  }
  dist::barrier();  // rank 0 has recorded everything: the next sweep's requests are its own
  return res;
}

}  // namespace

SweepResult run_sweep(const SweepOptions& opt, const std::function<void(const SweepProgress&)>& on_progress) {
  if (dist::size() > 1 && dist::rank() > 0) return opt.list_only ? SweepResult{} : run_sweep_worker(opt);
  if (opt.shard_n < 1 || opt.shard_i < 0 || opt.shard_i >= opt.shard_n)
    throw UserError("--shard: expected i/N with 0 <= i < N (got " + std::to_string(opt.shard_i) + "/" + std::to_string(opt.shard_n) + ")");
  const ExperimentSpec spec = load_spec(opt.spec_path, opt.scale);
  auto all = expand(spec);
  // Every run's resolved config, checked before anything starts (a bad axis value is an
  // error now, not a failed run later); train.threads depends on -j and changes nothing.
  std::map<std::string, std::string> dir_of;
  for (auto& r : all) {
    RunConfig cfg;
    try {
      cfg = load_run_config(opt.spec_path, r.overrides, opt.scale);
    } catch (const UserError& e) {  // a value of the sweep: name the spec and the run, not "command line"
      std::string msg = e.what();
      if (msg.rfind("command line: ", 0) == 0) msg = msg.substr(14);
      throw UserError(opt.spec_path + ": run " + r.id + " of the sweep: " + msg);
    }
    cfg.train.threads = 0;
    r.config = resolved_toml(cfg);
    r.config_hash = hash_hex(r.config);
    r.cost = estimated_run_flops(cfg);
    const std::string dir = run_dir_name(r.id);
    if (dir_of.count(dir)) throw UserError(opt.spec_path + ": runs " + dir_of[dir] + " and " + r.id + " would share the directory " + dir);
    dir_of[dir] = r.id;
  }
  if (opt.list_only) {
    SweepResult res;
    for (size_t i = 0; i < all.size(); ++i)
      if (int(i) % opt.shard_n == opt.shard_i) res.listed.push_back(all[i].id);
    res.total = int(res.listed.size());
    return res;
  }
  std::error_code ec;
  fs::create_directories(fs::path(opt.out) / "runs", ec);
  if (ec) throw UserError(opt.out + ": cannot create the sweep directory: " + ec.message());
  const std::string db = (fs::path(opt.out) / "runs.db").string();
  Store store(db);
  const std::string prev = store.meta("experiment");
  if (!prev.empty() && prev != spec.name)
    throw UserError(db + ": holds experiment '" + prev + "', not '" + spec.name + "' (use another --out)");
  const std::string prev_scale = store.meta("scale");
  if (!prev.empty() && prev_scale != opt.scale)
    throw UserError(db + ": was run with --scale '" + prev_scale + "', not '" + opt.scale + "' (use another --out)");

  // The runs already in the store must be the runs the spec gives now, config for config;
  // checked, discarded (--rerun-changed) and registered in one transaction.
  SweepResult res;
  std::map<std::string, const RunSpec*> planned;
  for (const auto& r : all) planned[r.id] = &r;
  auto changed = [&](const RunRow& row) -> std::string {
    auto it = planned.find(row.id);
    if (it == planned.end()) return "is no longer in the spec";
    // Registered config, or for a store of an older attnlab the config the run ran with;
    // both read back and written anew, so that a change of the resolved format alone (a
    // newer attnlab) is no change.
    std::string before = !row.planned.empty() ? row.planned : row.config;
    if (before.empty() || before == it->second->config) return "";
    try {
      RunConfig c = parse_run_config(before, db + ": run " + row.id, {}, "");
      c.train.threads = 0;
      before = resolved_toml(c);
    } catch (const UserError&) {
    }
    if (before == it->second->config) return "";
    std::string was, now;
    const std::string key = first_changed_key(before, it->second->config, &was, &now);
    return "has " + key + " = " + now + " in the spec, but ran (or was registered) with " + key + " = " + was;
  };
  const std::map<std::string, std::string> meta = {{"experiment", spec.name}, {"spec", fs::absolute(opt.spec_path).string()},
                                                   {"spec_text", spec.text}, {"scale", opt.scale}, {"title", spec.title},
                                                   {"result", spec.result}};
  res.discarded = store.register_runs(spec.name, all, meta, opt.rerun_changed, changed, [&](const std::string& id) {
    fs::remove_all(fs::path(opt.out) / "runs" / run_dir_name(id), ec);  // not in use: its owner is dead
  });
  res.retried = store.retry_failed(opt.shard_i, opt.shard_n);

  const int cores = rank_cores();
  int mine = 0;
  for (size_t i = 0; i < all.size(); ++i) mine += int(i) % opt.shard_n == opt.shard_i;
  const int jobs = std::max(1, std::min(opt.jobs > 0 ? opt.jobs : cores, std::max(1, mine)));
  const int threads = std::max(1, cores / jobs);
  const std::string owner = Store::self_owner();
  const auto t0 = std::chrono::steady_clock::now();
  res.total = mine;
  Live live;
  int started_here = 0, finished_here = 0;
  bool exhausted = false;
  auto report = [&]() {
    if (!on_progress) return;
    SweepProgress p;
    const auto rows = store.runs(spec.name);
    double best = INFINITY;
    for (const auto& r : rows) {
      if (int(r.idx) % opt.shard_n != opt.shard_i) continue;
      ++p.total;
      if (r.status == "completed" || r.status == "diverged" || r.status == "failed") ++p.done;
      if (r.status == "diverged") ++p.diverged;
      if (r.status == "failed") ++p.failed;
      if (r.status == "running") ++p.running;
      if (r.status == "completed" && !r.summary.empty()) {
        const auto j = nlohmann::json::parse(r.summary);
        if (j.contains("min_val_loss") && j["min_val_loss"].is_number() && j["min_val_loss"].get<double>() < best) {
          best = j["min_val_loss"].get<double>();
          std::string pt;
          for (const auto& [k, v] : r.point) pt += (pt.empty() ? "" : " ") + k + "=" + v;
          std::ostringstream ss;
          ss << "min_val_loss " << best << " (" << pt << " seed=" << r.seed << ")";
          p.best = ss.str();
        }
      }
    }
    p.elapsed_s = seconds_since(t0);
    p.eta_s = finished_here > 0 ? p.elapsed_s / finished_here * std::max(0, p.total - p.done) : NAN;
    on_progress(p);
  };
  report();
  const int ranks = dist::size();
  res.ranks = ranks;
  // Runs out at other ranks (by id, with their start), and ranks told there is no more work.
  std::map<std::string, std::chrono::steady_clock::time_point> remote;
  int told_none = 0;
  bool finished_since_report = false;
  auto record = [&](const RunRow& r, const Outcome& o) {
    if (!store.finish(r.id, o.status, o.summary, o.config, o.metrics, o.error, o.wall_s, owner))
      return;  // discarded meanwhile by another sweep's --rerun-changed: not ours to record
    ++finished_here;
    if (o.status == "completed") ++res.completed;
    else if (o.status == "diverged") ++res.diverged;
    else ++res.failed;
    finished_since_report = true;  // reported once the freed slots are refilled: "2 running", not "1"
  };
  auto finished_child = [&](pid_t pid, int st) {
    if (const auto f = take_finished(opt, live, pid, st)) record(f->first, f->second);
  };
  try {
    while (true) {
      while (!exhausted && int(live.size()) < jobs) {
        auto r = store.claim(owner, opt.shard_i, opt.shard_n);
        if (!r) { exhausted = true; break; }
        start_run(opt, *r, threads, live);
        ++started_here;
        report();
        finished_since_report = false;
      }
      if (finished_since_report) {
        report();
        finished_since_report = false;
      }
      if (ranks == 1) {
        if (live.empty()) break;
        int st = 0;
        const pid_t pid = wait_child(&st, opt.check);
        if (pid < 0) break;
        if (pid > 0) finished_child(pid, st);
        continue;
      }
      // Under MPI: this rank's children and the other ranks' messages, polled.
      if (exhausted && live.empty() && remote.empty() && told_none == ranks - 1) break;
      bool idle = true;
      int st = 0;
      if (const pid_t pid = live.empty() ? 0 : waitpid(-1, &st, WNOHANG); pid > 0) {
        finished_child(pid, st);
        idle = false;
      }
      int from = 0, tag = 0;
      if (dist::poll(&from, &tag)) {
        idle = false;
        const std::string text = dist::receive(from, tag);
        if (tag == kWant) {
          std::optional<RunRow> r;
          if (!exhausted) r = store.claim(owner, opt.shard_i, opt.shard_n);
          if (!r) {
            exhausted = true;
            dist::send(from, kNone, "");
            ++told_none;
          } else {
            dist::send(from, kRun, run_message(*r));
            remote[r->id] = std::chrono::steady_clock::now();
            ++started_here;
            report();
          }
        } else if (tag == kDone) {
          const auto [id, o] = done_from_message(text);
          remote.erase(id);
          RunRow r;
          r.id = id;
          record(r, o);
        }
      }
      if (idle) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  } catch (...) {  // stopped (Ctrl-C in Python) or failed: this process's runs resume next time
    stop_live(live, store, owner);
    throw;
  }
  if (ranks > 1) dist::barrier();  // with every other rank, done with this sweep (reproduce runs several)
  // Totals from the store (runs finished by an earlier, interrupted sweep count too); runs
  // that another live sweep holds are not ours to wait for: they count as skipped.
  res.completed = res.diverged = res.failed = res.skipped = 0;
  for (const auto& r : store.runs(spec.name)) {
    if (int(r.idx) % opt.shard_n != opt.shard_i) continue;
    if (r.status == "completed") ++res.completed;
    else if (r.status == "diverged") ++res.diverged;
    else if (r.status == "failed") ++res.failed;
    else ++res.skipped;
  }
  res.wall_s = seconds_since(t0);
  (void)started_here;
  return res;
}

}  // namespace attnlab
