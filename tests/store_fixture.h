#pragma once
// Helpers of the tests that build sweep stores by hand and run the attnlab binary on them
// (test_trust.cpp, test_figures.cpp): a fresh scratch directory, a store made from a spec
// with a callback deciding each run's status and summary, the CLI run as a child process,
// files read and written whole, CSV parsed.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/process.h"
#include "sweep/spec.h"
#include "sweep/store.h"

namespace store_fixture {

using namespace attnlab;
namespace fs = std::filesystem;
using json = nlohmann::json;

inline std::string binary() {
  const char* e = std::getenv("ATTNLAB_TEST_BINARY");
  return e && *e ? e : ATTNLAB_BINARY;
}

struct Result {
  int status = -1;
  std::string out, err;
};

inline std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void spit(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p);
  f << s;
}

// Runs `attnlab ARGS...` without a shell; stderr is captured through a file.
inline Result run_cli(std::vector<std::string> args, const fs::path& work) {
  args.insert(args.begin(), binary());
  ProcessOptions o;
  o.capture_stdout = true;
  o.stderr_path = (work / "stderr.txt").string();
  const ProcessResult p = run_process(args, o);
  return {p.status, p.out, slurp(work / "stderr.txt")};
}

inline fs::path fresh(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("attnlab_trust_" + std::to_string(getpid()) + "_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// A store in DIR for the spec text (written to DIR/spec.toml): every run of the spec is
// registered; `outcome` gives each its status and summary ("" leaves it pending).
inline void make_store(const fs::path& dir, const std::string& spec_text,
                const std::function<void(const RunSpec&, std::string& status, json& summary)>& outcome,
                const std::string& spec_file = "spec.toml") {
  spit(dir / spec_file, spec_text);
  const ExperimentSpec spec = parse_spec(spec_text, (dir / spec_file).string(), "", false);
  Store s((dir / "runs.db").string());
  s.set_meta("experiment", spec.name);
  s.set_meta("spec", fs::absolute(dir / spec_file).string());
  s.set_meta("spec_text", spec_text);
  s.set_meta("scale", "");
  s.set_meta("title", spec.title);
  s.set_meta("result", spec.result);
  const auto runs = expand(spec);
  s.add_runs(spec.name, runs);
  for (const auto& r : runs) {
    std::string status;
    json summary = json::object();
    outcome(r, status, summary);
    if (!status.empty()) s.finish(r.id, status, summary.dump(), "", {}, "", 1.0);
  }
}

inline json claims_of(const fs::path& report) { return json::parse(slurp(report / "claims.json")); }

inline double num(const RunSpec& r, const std::string& key) { return std::stod(r.point.at(key)); }

// SQL on a store, as a killed sweep or the machine would leave it.
inline void sql(const fs::path& db, const std::string& statement) {
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db.string().c_str(), &h), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(h, statement.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(h);
}

inline json summary_of(const fs::path& sweep, int64_t seed) {
  Store s((sweep / "runs.db").string());
  for (const auto& r : s.runs())
    if (r.seed == seed) return r.summary.empty() ? json::object() : json::parse(r.summary);
  return json();
}

inline std::string status_of(const fs::path& sweep, int64_t seed) {
  Store s((sweep / "runs.db").string());
  for (const auto& r : s.runs())
    if (r.seed == seed) return r.status;
  return "";
}

// A tiny real sweep: two seeds of a small Transformer, `steps` steps each.
inline std::string tiny_spec(int steps, const std::string& title = "Tiny A") {
  return "[experiment]\nname = \"trust_tiny\"\ntitle = \"" + title + "\"\nresult = \"p2\"\ndescription = \"two runs\"\n"
         "[base]\nseed = 1\n[base.task]\nkind = \"sparse_memory\"\nseq_len = 8\nd_in = 2\nlags = [1]\nn_train = 32\nn_val = 8\n"
         "[base.model]\nd_model = 8\nlayers = 1\nheads = 1\nhead_dim = 8\nffn = 8\n"
         "[base.train]\nsteps = " + std::to_string(steps) + "\nbatch = 4\neval_every = 1\n"
         "[sweep]\nseeds = [1, 2]\n";
}

// The synthetic spec of the report tests: err against model.width.
inline const std::string kHead =
    "[experiment]\nname = \"synthetic\"\ntitle = \"Synthetic\"\nresult = \"p3\"\ndescription = \"made by the test\"\n"
    "[base.task]\nkind = \"sparse_memory\"\n";

// One line on stderr (after an optional blank line that clears a progress line).
inline std::string one_line(const std::string& err) {
  std::string e = err;
  while (!e.empty() && e.front() == '\n') e.erase(e.begin());
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << err;
  return e;
}

// RFC 4180 rows.
inline std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows(1, std::vector<std::string>(1));
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') { rows.back().back() += '"'; ++i; }
      else if (c == '"') quoted = false;
      else rows.back().back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      rows.back().emplace_back();
    } else if (c == '\n') {
      rows.emplace_back(1);
    } else {
      rows.back().back() += c;
    }
  }
  if (rows.back().size() == 1 && rows.back()[0].empty()) rows.pop_back();
  return rows;
}

}  // namespace store_fixture
