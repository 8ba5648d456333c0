#pragma once
// The result store of a sweep: one SQLite file (WAL mode) with every run's point, seed,
// status, resolved config, summary and timings, and the per-evaluation metrics. Several
// processes may share it: claiming a run is one IMMEDIATE transaction, and a run held by a
// process that no longer exists is claimable again (a killed sweep resumes).
#include <cstdint>
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
  explicit Store(const std::string& path);  // creates the file and tables if needed
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
  // Makes the failed runs with idx % shard_n == shard_i pending again (a crash or a kill by
  // the machine is no result); returns how many.
  int retry_failed(int shard_i, int shard_n);
  // Atomically takes one pending run (or one whose owner is dead) with idx % shard_n == shard_i.
  std::optional<RunRow> claim(const std::string& owner, int shard_i, int shard_n);
  // Records the end of a run: status, summary JSON, resolved config, metrics lines, error.
  void finish(const std::string& id, const std::string& status, const std::string& summary, const std::string& config,
              const std::vector<std::string>& metrics, const std::string& error, double wall_s);
  std::vector<RunRow> runs(const std::string& experiment = "") const;
  std::vector<std::string> metrics(const std::string& id) const;
  // Copies every finished run (and its metrics) of `other` that this store lacks or has
  // unfinished, and the metadata this store lacks (spec, spec text, title, result, ...).
  // UserError if the stores hold different experiments or scales, or a run registered with
  // different configs.
  int merge_from(const std::string& other_path);
  const std::string& path() const { return path_; }

  // "<pid>:<process start time>" of this process; owner_alive() tells whether such a process runs.
  static std::string self_owner();
  static bool owner_alive(const std::string& owner);

 private:
  void exec(const std::string& sql) const;
  sqlite3* db_ = nullptr;
  std::string path_;
};

}  // namespace attnlab
