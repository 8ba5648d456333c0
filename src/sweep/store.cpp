#include "sweep/store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/error.h"

namespace attnlab {

namespace {

// What went wrong in a store: a store may come from someone else (a missing column, a
// corrupt file), so it is bad input naming the file, not a crash.
[[noreturn]] void store_error(sqlite3* db, const std::string& what) {
  const char* f = sqlite3_db_filename(db, "main");
  throw UserError(std::string(f && *f ? f : "result store") + ": not a usable result store (" + what + ": " + sqlite3_errmsg(db) + ")");
}

// A prepared statement that finalizes itself.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr) != SQLITE_OK) store_error(db, "sqlite prepare");
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt& bind(int i, const std::string& v) { sqlite3_bind_text(s_, i, v.c_str(), int(v.size()), SQLITE_TRANSIENT); return *this; }
  Stmt& bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); return *this; }
  Stmt& bind(int i, double v) { sqlite3_bind_double(s_, i, v); return *this; }
  bool step() {
    for (;;) {
      const int rc = sqlite3_step(s_);
      if (rc == SQLITE_ROW) return true;
      if (rc == SQLITE_DONE) return false;
      if (rc == SQLITE_BUSY) { std::this_thread::sleep_for(std::chrono::milliseconds(20)); continue; }
      store_error(db_, "sqlite step");
    }
  }
  std::string text(int i) const {
    const unsigned char* t = sqlite3_column_text(s_, i);
    return t ? reinterpret_cast<const char*>(t) : "";
  }
  int64_t integer(int i) const { return sqlite3_column_int64(s_, i); }
  double real(int i) const { return sqlite3_column_double(s_, i); }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string point_json(const Point& p) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : p) j[k] = v;
  return j.dump();
}

Point point_from(const std::string& s) {
  Point p;
  if (s.empty()) return p;
  const nlohmann::json j = nlohmann::json::parse(s);  // named: items() must not outlive it
  for (const auto& [k, v] : j.items()) p[k] = v.get<std::string>();
  return p;
}

// Field 22 of /proc/PID/stat: the process start time, which tells a reused pid apart.
std::string start_time(long pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!std::getline(f, s)) return "";
  const size_t r = s.rfind(')');
  if (r == std::string::npos) return "";
  std::istringstream ss(s.substr(r + 2));
  std::string field;
  for (int i = 3; i <= 22 && ss >> field; ++i) {
    // A zombie has ended: it only waits for a parent to reap it, which may never come when
    // its parent was killed and PID 1 does not reap (as in some containers). A killed
    // sweep's zombie must not hold its runs.
    if (i == 3 && (field == "Z" || field == "X" || field == "x")) return "";
    if (i == 22) return field;
  }
  return "";
}

}  // namespace

std::string Store::self_owner() { return std::to_string(getpid()) + ":" + start_time(getpid()); }

bool Store::owner_alive(const std::string& owner) {
  const size_t c = owner.find(':');
  if (c == std::string::npos) return false;
  const long pid = std::atol(owner.substr(0, c).c_str());
  const std::string st = start_time(pid);
  return !st.empty() && st == owner.substr(c + 1);
}

Store::Store(const std::string& path, bool read_only) : path_(path) {
  const int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw UserError(path + ": cannot open the result store: " + msg);
  }
  sqlite3_busy_timeout(db_, 30000);
  try {
    if (!read_only) {
      exec("PRAGMA journal_mode=WAL");
      exec("PRAGMA synchronous=NORMAL");
      exec("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT)");
      exec("CREATE TABLE IF NOT EXISTS runs(id TEXT PRIMARY KEY, experiment TEXT, idx INTEGER, point TEXT, seed INTEGER,"
           " overrides TEXT, status TEXT, owner TEXT, started REAL, finished REAL, wall_s REAL, summary TEXT,"
           " config TEXT, error TEXT, attempts INTEGER DEFAULT 0)");
      exec("CREATE TABLE IF NOT EXISTS metrics(run_id TEXT, step INTEGER, data TEXT, PRIMARY KEY(run_id, step))");
    }
    {
      Stmt s(db_, "PRAGMA table_info(runs)");
      while (s.step()) has_planned_ = has_planned_ || s.text(1) == "config_hash";
    }
    // Stores written before runs carried their planned config get the columns (empty);
    // read-only, they are read as empty.
    if (!has_planned_ && !read_only) {
      exec("ALTER TABLE runs ADD COLUMN planned TEXT DEFAULT ''");
      exec("ALTER TABLE runs ADD COLUMN config_hash TEXT DEFAULT ''");
      has_planned_ = true;
    }
    bool has_cost = false;  // the estimated FLOPs that order the claims (added later still)
    {
      Stmt s(db_, "PRAGMA table_info(runs)");
      while (s.step()) has_cost = has_cost || s.text(1) == "cost";
    }
    if (!has_cost && !read_only) exec("ALTER TABLE runs ADD COLUMN cost REAL DEFAULT 0");
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

Store::~Store() { sqlite3_close(db_); }

void Store::exec(const std::string& sql) const {
  for (;;) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    if (rc == SQLITE_OK) return;
    const std::string msg = err ? err : "error";
    sqlite3_free(err);
    if (rc == SQLITE_BUSY) { std::this_thread::sleep_for(std::chrono::milliseconds(20)); continue; }
    throw UserError(path_ + ": not a usable result store (sqlite: " + msg + ")");
  }
}

void Store::set_meta(const std::string& key, const std::string& value) {
  Stmt(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)").bind(1, key).bind(2, value).step();
}

std::string Store::meta(const std::string& key) const {
  Stmt s(db_, "SELECT value FROM meta WHERE key = ?");
  s.bind(1, key);
  return s.step() ? s.text(0) : "";
}

void Store::insert_runs(const std::string& experiment, const std::vector<RunSpec>& runs) {
  for (size_t i = 0; i < runs.size(); ++i) {
    Stmt one(db_, "INSERT INTO runs(id, experiment, idx, point, seed, overrides, status, planned, config_hash, cost)"
                  " VALUES(?,?,?,?,?,?,'pending',?,?,?) ON CONFLICT(id) DO UPDATE SET idx = excluded.idx,"
                  " overrides = excluded.overrides, planned = excluded.planned, config_hash = excluded.config_hash,"
                  " cost = excluded.cost");
    one.bind(1, runs[i].id).bind(2, experiment).bind(3, int64_t(i)).bind(4, point_json(runs[i].point)).bind(5, runs[i].seed)
        .bind(6, nlohmann::json(runs[i].overrides).dump()).bind(7, runs[i].config).bind(8, runs[i].config_hash)
        .bind(9, runs[i].cost);
    one.step();
  }
}

void Store::add_runs(const std::string& experiment, const std::vector<RunSpec>& runs) {
  exec("BEGIN IMMEDIATE");
  try {
    insert_runs(experiment, runs);
    exec("COMMIT");
  } catch (...) {
    exec("ROLLBACK");
    throw;
  }
}

int Store::register_runs(const std::string& experiment, const std::vector<RunSpec>& runs,
                         const std::map<std::string, std::string>& meta_values, bool rerun_changed,
                         const std::function<std::string(const RunRow&)>& changed,
                         const std::function<void(const std::string&)>& on_discard) {
  exec("BEGIN IMMEDIATE");  // no other sweep claims or finishes a run until this is done
  try {
    std::vector<std::string> ids;
    std::string first;
    for (const auto& row : this->runs(experiment)) {
      const std::string why = changed(row);
      if (why.empty()) continue;
      if (row.status == "running" && owner_alive(row.owner))
        throw UserError(path_ + ": run " + row.id + " " + why + ", and another sweep (pid " + row.owner.substr(0, row.owner.find(':')) +
                        ") is running it now: wait for it, or stop it");
      if (first.empty()) first = row.id + " " + why;
      ids.push_back(row.id);
    }
    if (!ids.empty() && !rerun_changed)
      throw UserError(path_ + ": " + std::to_string(ids.size()) + " stored run(s) differ from the spec; first: " + first +
                      " (rerun with --rerun-changed to discard and rerun exactly those runs, or use another --out)");
    for (const auto& id : ids) {
      Stmt(db_, "DELETE FROM metrics WHERE run_id = ?").bind(1, id).step();
      Stmt(db_, "DELETE FROM runs WHERE id = ?").bind(1, id).step();
      if (on_discard) on_discard(id);
    }
    for (const auto& [k, v] : meta_values)
      Stmt(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)").bind(1, k).bind(2, v).step();
    insert_runs(experiment, runs);
    exec("COMMIT");
    return int(ids.size());
  } catch (...) {
    exec("ROLLBACK");
    throw;
  }
}

void Store::discard(const std::vector<std::string>& ids) {
  exec("BEGIN IMMEDIATE");
  try {
    for (const auto& id : ids) {
      Stmt(db_, "DELETE FROM metrics WHERE run_id = ?").bind(1, id).step();
      Stmt(db_, "DELETE FROM runs WHERE id = ?").bind(1, id).step();
    }
    exec("COMMIT");
  } catch (...) {
    exec("ROLLBACK");
    throw;
  }
}

int Store::retry_failed(int shard_i, int shard_n) {
  Stmt s(db_, "UPDATE runs SET status = 'pending', owner = '' WHERE status = 'failed' AND idx % ? = ?");
  s.bind(1, int64_t(shard_n)).bind(2, int64_t(shard_i)).step();
  return sqlite3_changes(db_);
}

void Store::release(const std::vector<std::string>& ids, const std::string& owner) {
  exec("BEGIN IMMEDIATE");
  try {
    for (const auto& id : ids)
      Stmt(db_, "UPDATE runs SET owner='' WHERE id=? AND owner=? AND status='running'").bind(1, id).bind(2, owner).step();
    exec("COMMIT");
  } catch (...) {
    exec("ROLLBACK");
    throw;
  }
}

std::optional<RunRow> Store::claim(const std::string& owner, int shard_i, int shard_n) {
  exec("BEGIN IMMEDIATE");  // the write lock: no two processes claim at once
  try {
    Stmt s(db_, "SELECT id, owner, status, overrides, idx, planned FROM runs WHERE status IN ('pending', 'running') AND idx % ? = ?"
                " ORDER BY cost DESC, idx");  // the longest runs first: -j N does not end on one long run alone
    s.bind(1, int64_t(shard_n)).bind(2, int64_t(shard_i));
    std::optional<RunRow> got;
    while (s.step()) {
      if (s.text(2) == "running" && owner_alive(s.text(1))) continue;
      RunRow r;
      r.id = s.text(0);
      r.status = s.text(2);  // "running": its owner died (the run may have left a checkpoint)
      r.idx = s.integer(4);
      r.planned = s.text(5);
      try {
        for (const auto& o : nlohmann::json::parse(s.text(3))) r.overrides.push_back(o.get<std::string>());
      } catch (const nlohmann::json::exception& e) {
        throw UserError(path_ + ": run " + r.id + ": malformed overrides in the store (" + e.what() + ")");
      }
      got = r;
      break;
    }
    if (got) {
      Stmt u(db_, "UPDATE runs SET status='running', owner=?, started=?, attempts=attempts+1 WHERE id=?");
      u.bind(1, owner).bind(2, now_s()).bind(3, got->id).step();
    }
    exec("COMMIT");
    return got;
  } catch (...) {
    exec("ROLLBACK");
    throw;
  }
}

bool Store::finish(const std::string& id, const std::string& status, const std::string& summary, const std::string& config,
                   const std::vector<std::string>& metrics, const std::string& error, double wall_s, const std::string& owner) {
  exec("BEGIN IMMEDIATE");
  try {
    if (!owner.empty()) {  // the run is still ours (not discarded and registered anew meanwhile)
      Stmt q(db_, "SELECT owner FROM runs WHERE id = ?");
      q.bind(1, id);
      if (!q.step() || q.text(0) != owner) {
        exec("ROLLBACK");
        return false;
      }
    }
    Stmt(db_, "DELETE FROM metrics WHERE run_id = ?").bind(1, id).step();
    for (const auto& line : metrics) {
      int64_t step = 0;
      try { step = nlohmann::json::parse(line).value("step", int64_t(0)); } catch (...) { continue; }
      Stmt(db_, "INSERT OR REPLACE INTO metrics(run_id, step, data) VALUES(?,?,?)").bind(1, id).bind(2, step).bind(3, line).step();
    }
    Stmt(db_, "UPDATE runs SET status=?, summary=?, config=?, error=?, wall_s=?, finished=?, owner='' WHERE id=?")
        .bind(1, status).bind(2, summary).bind(3, config).bind(4, error).bind(5, wall_s).bind(6, now_s()).bind(7, id).step();
    exec("COMMIT");
    return true;
  } catch (...) {
    exec("ROLLBACK");
    throw;
  }
}

std::vector<RunRow> Store::runs(const std::string& experiment) const {
  std::vector<RunRow> out;
  Stmt s(db_, std::string("SELECT id, experiment, idx, point, seed, overrides, status, owner, summary, config, error, wall_s, ") +
                  (has_planned_ ? "planned, config_hash" : "'', ''") + " FROM runs"
              " WHERE ? = '' OR experiment = ? ORDER BY experiment, idx");
  s.bind(1, experiment).bind(2, experiment);
  while (s.step()) {
    RunRow r;
    r.id = s.text(0); r.experiment = s.text(1); r.idx = s.integer(2); r.seed = s.integer(4);
    try {  // a store may come from someone else: malformed rows are bad input, not a crash
      r.point = point_from(s.text(3));
      for (const auto& o : nlohmann::json::parse(s.text(5).empty() ? "[]" : s.text(5))) r.overrides.push_back(o.get<std::string>());
    } catch (const nlohmann::json::exception& e) {
      throw UserError(path_ + ": run " + r.id + ": malformed point or overrides in the store (" + e.what() + ")");
    }
    r.status = s.text(6); r.owner = s.text(7); r.summary = s.text(8); r.config = s.text(9); r.error = s.text(10);
    r.wall_s = s.real(11);
    r.planned = s.text(12);
    r.config_hash = s.text(13);
    out.push_back(r);
  }
  return out;
}

std::vector<std::string> Store::metrics(const std::string& id) const {
  std::vector<std::string> out;
  Stmt s(db_, "SELECT data FROM metrics WHERE run_id = ? ORDER BY step");
  s.bind(1, id);
  while (s.step()) out.push_back(s.text(0));
  return out;
}

std::vector<std::string> Store::merge_from(const std::string& other_path) {
  Store other(other_path, true);
  for (const char* key : {"experiment", "scale"}) {
    const std::string a = meta(key), b = other.meta(key);
    if (!a.empty() && !b.empty() && a != b)
      throw UserError(other_path + ": holds " + key + " '" + b + "', but " + path_ + " holds '" + a + "': stores of different sweeps cannot be merged");
  }
  {
    Stmt s(other.db_, "SELECT key, value FROM meta ORDER BY key");
    while (s.step())
      if (meta(s.text(0)).empty() && !s.text(1).empty()) set_meta(s.text(0), s.text(1));
  }
  std::vector<std::string> taken;
  const auto mine = runs();
  for (const auto& r : other.runs()) {
    const RunRow* have = nullptr;
    for (const auto& m : mine)
      if (m.id == r.id) have = &m;
    if (have && !have->config_hash.empty() && !r.config_hash.empty() && have->config_hash != r.config_hash) {
      std::string was, now;
      const std::string key = first_changed_key(have->planned, r.planned, &was, &now);
      throw UserError(other_path + ": run " + r.id + " was registered with " + key + " = " + now + ", but " + path_ +
                      " has it with " + key + " = " + was + ": these are not shards of one sweep");
    }
    if (r.status != "completed" && r.status != "diverged" && r.status != "failed") continue;
    if (have && (have->status == "completed" || have->status == "diverged")) continue;
    exec("BEGIN IMMEDIATE");
    try {
      Stmt(db_, "INSERT OR IGNORE INTO runs(id, experiment, idx, point, seed, overrides, status, planned, config_hash)"
                " VALUES(?,?,?,?,?,?,'pending',?,?)")
          .bind(1, r.id).bind(2, r.experiment).bind(3, r.idx).bind(4, point_json(r.point)).bind(5, r.seed)
          .bind(6, nlohmann::json(r.overrides).dump()).bind(7, r.planned).bind(8, r.config_hash).step();
      exec("COMMIT");
    } catch (...) {
      exec("ROLLBACK");
      throw;
    }
    finish(r.id, r.status, r.summary, r.config, other.metrics(r.id), r.error, r.wall_s);
    {  // and how many times the shard started it, as a sweep on one machine would count
      Stmt q(other.db_, "SELECT attempts FROM runs WHERE id = ?");
      q.bind(1, r.id);
      if (q.step()) Stmt(db_, "UPDATE runs SET attempts = ? WHERE id = ?").bind(1, q.integer(0)).bind(2, r.id).step();
    }
    taken.push_back(r.id);
  }
  return taken;
}

}  // namespace attnlab
