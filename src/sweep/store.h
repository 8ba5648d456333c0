#pragma once
// The result store of a sweep: one SQLite file (WAL mode) with every run's point, seed,
// status, resolved config, summary and timings, and the per-evaluation metrics. Several
// processes may share it: claiming a run is one IMMEDIATE transaction, and a run held by a
// process that no longer exists is claimable again (a killed sweep resumes).
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sweep/spec.h"

struct sqlite3;

namespace attnlab {

struct RunRow {
  std::string id, experiment, status, owner, summary, config, error;
  std::string planned, config_hash;  // the resolved config registered for the run (train.threads = 0), its hash
  Point point;
  int64_t seed = 0, idx = 0;
  std::vector<std::string> overrides;
  double wall_s = 0;
};

class Store {
 public:
  // Creates the file and tables if needed; read_only opens an existing store without writing
  // to it (a report of someone else's store). Any SQLite or schema error is a UserError
  // naming the file.
  explicit Store(const std::string& path, bool read_only = false);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  void set_meta(const std::string& key, const std::string& value);
  std::string meta(const std::string& key) const;
  // Registers runs (pending); runs already present keep their state, and take the run's
  // index, planned config and hash from `runs`.
  void add_runs(const std::string& experiment, const std::vector<RunSpec>& runs);
  // Deletes runs and their metrics (so that add_runs registers them anew).
  void discard(const std::vector<std::string>& ids);
  // What a sweep does on start, in one IMMEDIATE transaction (no other sweep claims or
  // finishes meanwhile): each stored run of `experiment` for which changed(row) gives a
  // reason (" has train.steps = 7 in the spec, but ...") is discarded if rerun_changed
  // (on_discard(id) runs inside the transaction), else it is a UserError naming the first;
  // a changed run that a live process holds is always an error. Then the metadata is set
  // and the runs registered as add_runs does. Returns how many runs were discarded.
  int register_runs(const std::string& experiment, const std::vector<RunSpec>& runs,
                    const std::map<std::string, std::string>& meta, bool rerun_changed,
                    const std::function<std::string(const RunRow&)>& changed,
                    const std::function<void(const std::string&)>& on_discard);
  // Makes the failed runs with idx % shard_n == shard_i pending again (a crash or a kill by
  // the machine is no result); returns how many.
  int retry_failed(int shard_i, int shard_n);
  // The runs `ids` held by `owner` are given up: still "running" (their directories keep their
  // checkpoints) but owned by nobody, so the next claim takes them and resumes them.
  void release(const std::vector<std::string>& ids, const std::string& owner);
  // Atomically takes one pending run (or one whose owner is dead) with idx % shard_n == shard_i.
  std::optional<RunRow> claim(const std::string& owner, int shard_i, int shard_n);
  // Records the end of a run: status, summary JSON, resolved config, metrics lines, error.
  // With an owner, only if the run is still held by that owner (false otherwise: it was
  // discarded and registered anew by `sweep --rerun-changed`, and this result is stale).
  bool finish(const std::string& id, const std::string& status, const std::string& summary, const std::string& config,
              const std::vector<std::string>& metrics, const std::string& error, double wall_s, const std::string& owner = "");
  std::vector<RunRow> runs(const std::string& experiment = "") const;
  std::vector<std::string> metrics(const std::string& id) const;
  // Copies every finished run (and its metrics) of `other` that this store lacks or has
  // unfinished, and the metadata this store lacks (spec, spec text, title, result, ...).
  // UserError if the stores hold different experiments or scales, or a run registered with
  // different configs. Returns the ids of the runs it took.
  std::vector<std::string> merge_from(const std::string& other_path);
  const std::string& path() const { return path_; }

  // "<pid>:<process start time>" of this process; owner_alive() tells whether such a process runs.
  static std::string self_owner();
  static bool owner_alive(const std::string& owner);

 private:
  void exec(const std::string& sql) const;
  void insert_runs(const std::string& experiment, const std::vector<RunSpec>& runs);
  sqlite3* db_ = nullptr;
  bool has_planned_ = false;  // the runs table has the planned and config_hash columns
  std::string path_;
};

}  // namespace attnlab
