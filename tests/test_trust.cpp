// Verdicts you can trust (issue 9): a resumed sweep never mixes configurations, diverged and
// failed runs are counted instead of dropped, intervals resample seeds, no string from a
// spec, a store or a path reaches a shell, stores of one experiment keep their own figures,
// merged stores report without their spec file, claims refuse to pool other axes, CSVs are
// quoted, run directories are distinct, dropped bootstrap resamples are counted.
//
// Most tests drive the attnlab binary over stores made here, so that they can be pointed at
// another build: ATTNLAB_TEST_BINARY=/path/to/attnlab runs them against it.
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

#include "core/error.h"
#include "core/process.h"
#include "store_fixture.h"
#include "sweep/spec.h"
#include "sweep/store.h"

using namespace attnlab;
namespace fs = std::filesystem;
using json = nlohmann::json;

using namespace store_fixture;

// Defect 1: a sweep killed while holding a run, the spec's train.steps changed, the sweep
// rerun: the store must not hold runs with 2 and 7 steps side by side.
TEST(Trust, ResumingWithAChangedConfigIsRefusedOrRerunsExactlyTheChangedRuns) {
  const fs::path d = fresh("resume");
  spit(d / "spec.toml", tiny_spec(2));
  const std::string sw = (d / "sweep").string();
  ASSERT_EQ(run_cli({"sweep", (d / "spec.toml").string(), "-j", "1", "--out", sw}, d).status, 0);
  sql(d / "sweep" / "runs.db", "UPDATE runs SET status = 'running', owner = '1:0' WHERE seed = 2");  // held by a dead sweep
  spit(d / "spec.toml", tiny_spec(7));
  Result r = run_cli({"sweep", (d / "spec.toml").string(), "-j", "1", "--out", sw}, d);
  EXPECT_EQ(r.status, 2);
  const std::string line = one_line(r.err);
  EXPECT_NE(line.find("train.steps = 7"), std::string::npos) << line;
  EXPECT_NE(line.find("train.steps = 2"), std::string::npos) << line;
  EXPECT_NE(line.find("--rerun-changed"), std::string::npos) << line;
  EXPECT_EQ(summary_of(d / "sweep", 1).value("steps", -1), 2);  // untouched
  r = run_cli({"sweep", (d / "spec.toml").string(), "-j", "1", "--out", sw, "--rerun-changed"}, d);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(summary_of(d / "sweep", 1).value("steps", -1), 7);
  EXPECT_EQ(summary_of(d / "sweep", 2).value("steps", -1), 7);
  // Nothing changed now: a rerun runs nothing and is no error.
  EXPECT_EQ(run_cli({"sweep", (d / "spec.toml").string(), "-j", "1", "--out", sw}, d).status, 0);
  // The report uses the spec stored with the runs, not the file as edited since.
  spit(d / "spec.toml", tiny_spec(7, "Edited after the runs"));
  ASSERT_EQ(run_cli({"report", sw, "-o", (d / "report").string()}, d).status, 0);
  const std::string html = slurp(d / "report" / "index.html");
  EXPECT_NE(html.find("Tiny A"), std::string::npos);
  EXPECT_EQ(html.find("Edited after the runs"), std::string::npos);
  fs::remove_all(d);
}

// Defect 2: a failed run (a crash, a kill by the machine) is retried on resume; a diverged
// run is a result and is not.
TEST(Trust, FailedRunsAreRetriedOnResumeAndDivergedRunsAreNot) {
  const fs::path d = fresh("retry");
  spit(d / "spec.toml", tiny_spec(2));
  const std::string sw = (d / "sweep").string();
  ASSERT_EQ(run_cli({"sweep", (d / "spec.toml").string(), "-j", "1", "--out", sw}, d).status, 0);
  sql(d / "sweep" / "runs.db", "UPDATE runs SET status = 'failed', summary = '', error = 'killed by signal 9' WHERE seed = 1");
  sql(d / "sweep" / "runs.db", "UPDATE runs SET status = 'diverged' WHERE seed = 2");
  ASSERT_EQ(run_cli({"sweep", (d / "spec.toml").string(), "-j", "1", "--out", sw}, d).status, 0);
  EXPECT_EQ(status_of(d / "sweep", 1), "completed");
  EXPECT_EQ(status_of(d / "sweep", 2), "diverged");
  fs::remove_all(d);
}

// Defect 2: all seeds at the largest width diverged: the slope must not be fitted on the
// other widths as if nothing happened; a point with a missing seed is named.
TEST(Trust, DivergedAndFailedRunsAreCountedInClaimsAndFigures) {
  const fs::path d = fresh("diverged");
  const std::string spec = kHead +
      "[sweep]\n\"model.width\" = [8, 16, 32, 64]\nseeds = [1, 2, 3]\n"
      "[[figure]]\nx = \"model.width\"\ny = \"err\"\n"
      "[[claim]]\nkind = \"slope\"\nx = \"model.width\"\ny = \"err\"\nexpect = [-0.7, -0.3]\n";
  auto power = [](const RunSpec& r) { return 2.0 * std::pow(num(r, "model.width"), -0.5) * (1 + 0.01 * double(r.seed)); };
  make_store(d / "lost", spec, [&](const RunSpec& r, std::string& st, json& s) {
    if (num(r, "model.width") == 64) { st = "diverged"; s = {{"status", "diverged"}, {"diverged_step", 3}}; return; }
    st = "completed";
    s = {{"status", "completed"}, {"err", power(r)}};
  });
  ASSERT_EQ(run_cli({"report", (d / "lost").string(), "-o", (d / "r1").string()}, d).status, 0);
  json c = claims_of(d / "r1");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_FALSE(c[0]["holds"].get<bool>());
  EXPECT_EQ(c[0].value("verdict", ""), "n/a");
  const std::string note = c[0]["note"].get<std::string>();
  EXPECT_NE(note.find("model.width = 64"), std::string::npos) << note;
  EXPECT_NE(note.find("seed=3 (diverged)"), std::string::npos) << note;
  // The figure's CSV counts the seeds per point; the page says which points lack seeds.
  const auto rows = parse_csv(slurp(d / "r1" / "synthetic" / "fig1.csv"));
  ASSERT_EQ(rows.size(), 5u);
  const auto& h = rows[0];
  const auto col = [&](const std::string& name) { return size_t(std::find(h.begin(), h.end(), name) - h.begin()); };
  ASSERT_LT(col("diverged"), h.size());
  EXPECT_EQ(rows[4][col("model.width")], "64");
  EXPECT_EQ(rows[4][col("n")], "0");
  EXPECT_EQ(rows[4][col("diverged")], "3");
  EXPECT_NE(slurp(d / "r1" / "index.html").find("model.width = 64: 0 of 3 seeds (3 diverged)"), std::string::npos);

  // One failed seed at one width: evaluated on the rest, and the note says so.
  make_store(d / "partial", spec, [&](const RunSpec& r, std::string& st, json& s) {
    if (num(r, "model.width") == 16 && r.seed == 2) { st = "failed"; return; }
    st = "completed";
    s = {{"status", "completed"}, {"err", power(r)}};
  });
  ASSERT_EQ(run_cli({"report", (d / "partial").string(), "-o", (d / "r2").string()}, d).status, 0);
  c = claims_of(d / "r2");
  EXPECT_TRUE(c[0]["holds"].get<bool>()) << c.dump();
  EXPECT_NE(c[0]["note"].get<std::string>().find("model.width = 16: synthetic/model.width=16/seed=2 (failed)"), std::string::npos)
      << c[0]["note"];
  fs::remove_all(d);
}

// Defect 3: 2 seeds x 10 points, seed 1 20% better, seed 2 5% worse. Resampling pairs one by
// one gave a narrow interval above 0 ("holds"); resampling seeds spans [-0.05, 0.2].
TEST(Trust, CompareResamplesSeedsAndOneSeedGivesAPointInterval) {
  const fs::path d = fresh("compare");
  auto spec = [&](const std::string& seeds) {
    return kHead + "[sweep]\n\"task.lag\" = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n\"model.kind\" = [\"a\", \"b\"]\nseeds = " + seeds +
           "\n[[claim]]\nkind = \"compare\"\ny = \"err\"\na = { \"model.kind\" = \"a\" }\nb = { \"model.kind\" = \"b\" }\nexpect = 0.0\n";
  };
  auto outcome = [](const RunSpec& r, std::string& st, json& s) {
    const double b = 1.0 + 0.1 * num(r, "task.lag");
    const bool is_a = r.point.at("model.kind") == "\"a\"";
    st = "completed";
    s = {{"err", is_a ? b * (r.seed == 1 ? 0.8 : 1.05) : b}};
  };
  make_store(d / "two", spec("[1, 2]"), outcome);
  ASSERT_EQ(run_cli({"report", (d / "two").string(), "-o", (d / "r2").string()}, d).status, 0);
  json c = claims_of(d / "r2")[0];
  EXPECT_NEAR(c["measured"].get<double>(), 0.075, 1e-9);
  EXPECT_NEAR(c["ci_low"].get<double>(), -0.05, 1e-9);
  EXPECT_NEAR(c["ci_high"].get<double>(), 0.2, 1e-9);
  EXPECT_FALSE(c["holds"].get<bool>());
  make_store(d / "one", spec("[1]"), outcome);
  ASSERT_EQ(run_cli({"report", (d / "one").string(), "-o", (d / "r1").string()}, d).status, 0);
  c = claims_of(d / "r1")[0];
  EXPECT_NEAR(c["measured"].get<double>(), 0.2, 1e-9);
  EXPECT_EQ(c["ci_low"].get<double>(), c["measured"].get<double>());
  EXPECT_EQ(c["ci_high"].get<double>(), c["measured"].get<double>());
  fs::remove_all(d);
}

// Defect 4: titles, series and x values from a spec or a received store, and the -o path,
// never reach a shell or gnuplot's command line.
TEST(Trust, NoStringFromASpecAStoreOrAPathRunsACommand) {
  const fs::path d = fresh("hostile");
  const std::string m = (d / "pwned").string();
  const std::string spec =
      "[experiment]\nname = \"hostile\"\ntitle = \"E1\\n!touch " + m + "1\"\nresult = \"p3\"\n"
      "description = \"<script>alert(1)</script>\"\n[base.task]\nkind = \"sparse_memory\"\n"
      "[sweep]\n\"model.rpe\" = [\"none\", \"t5\\n!touch " + m + "2\", \"x\\\"\\n!touch " + m + "3\\n\"]\n"
      "\"model.norm\" = [\"layer\", \"a`touch " + m + "4`b\", \"c\\ne\\n!touch " + m + "5\", \"q'@x\"]\nseeds = [1]\n"
      "[[figure]]\nx = \"model.norm\"\ny = \"err\"\nseries = \"model.rpe\"\ntitle = \"`touch " + m + "6` \\\"\\n!touch " + m + "7\"\n";
  make_store(d / "store", spec, [](const RunSpec& r, std::string& st, json& s) {
    st = "completed";
    s = {{"err", 1.0 + 0.1 * double(r.point.at("model.norm").size())}};
  });
  Result r = run_cli({"report", (d / "store").string(), "-o", (d / "plain").string()}, d);
  EXPECT_EQ(r.status, 0) << r.err;
  for (int i = 1; i <= 7; ++i) EXPECT_FALSE(fs::exists(m + std::to_string(i))) << "a command ran: pwned" << i;
  EXPECT_TRUE(fs::exists(d / "plain" / "hostile" / "fig1.svg"));
  const fs::path out = d / "rep'$(touch pwned8)`touch pwned9`\n!touch pwned10";
  r = run_cli({"report", (d / "store").string(), "-o", out.string()}, d);
  EXPECT_EQ(r.status, 0) << r.err;
  for (const char* f : {"pwned8", "pwned9", "pwned10"}) {
    EXPECT_FALSE(fs::exists(d / f)) << f;
    EXPECT_FALSE(fs::exists(fs::current_path() / f)) << f;
  }
  EXPECT_TRUE(fs::exists(out / "hostile" / "fig1.svg"));
  const std::string html = slurp(out / "index.html");
  EXPECT_EQ(html.find("<script>alert"), std::string::npos);
  fs::remove_all(d);
}

// Defect 5: `report sweeps/` over e1 and its shards: each store keeps its own figures.
TEST(Trust, StoresOfOneExperimentKeepTheirOwnFigures) {
  const fs::path d = fresh("stores");
  const std::string spec = kHead + "[sweep]\n\"model.width\" = [8, 16]\nseeds = [1]\n[[figure]]\nx = \"model.width\"\ny = \"err\"\n";
  for (const auto& [name, scale] : std::vector<std::pair<std::string, double>>{{"e1", 1.0}, {"e1-shard0", 10.0}})
    make_store(d / "sweeps" / name, spec, [scale](const RunSpec& r, std::string& st, json& s) {
      st = "completed";
      s = {{"err", scale * num(r, "model.width")}};
    });
  ASSERT_EQ(run_cli({"report", (d / "sweeps").string(), "-o", (d / "rep").string()}, d).status, 0);
  std::set<std::string> csvs;
  for (const auto& e : fs::directory_iterator(d / "rep"))
    if (fs::exists(e.path() / "fig1.csv")) csvs.insert(slurp(e.path() / "fig1.csv"));
  EXPECT_EQ(csvs.size(), 2u) << "two stores, two distinct figures";
  fs::remove_all(d);
}

// Defect 6: a merged store (and a store whose spec uses base = "file.toml") reports after
// the spec files are gone.
TEST(Trust, MergedStoresKeepTheSpecAndReportWithoutTheSpecFile) {
  const fs::path d = fresh("merge");
  const std::string spec = "base = \"base.toml\"\n[experiment]\nname = \"merged\"\ntitle = \"Merged title\"\nresult = \"p3\"\n"
                           "description = \"d\"\n[sweep]\n\"model.width\" = [8, 16]\nseeds = [1, 2]\n"
                           "[[claim]]\nkind = \"monotone\"\nx = \"model.width\"\ny = \"err\"\nexpect = \"decreasing\"\n";
  const std::string base = "[task]\nkind = \"sparse_memory\"\n";
  for (int shard = 0; shard < 2; ++shard) {
    spit(d / ("s" + std::to_string(shard)) / "base.toml", base);
    make_store(d / ("s" + std::to_string(shard)), spec, [shard](const RunSpec& r, std::string& st, json& s) {
      if (int(r.seed) % 2 != shard) return;  // each shard finished half of the runs
      st = "completed";
      s = {{"err", 1.0 / num(r, "model.width") + 0.01 * double(r.seed)}};
    });
  }
  Result r = run_cli({"merge", (d / "m").string(), (d / "s0").string(), (d / "s1").string()}, d);
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* s : {"s0", "s1"}) {
    fs::remove(d / s / "spec.toml");
    fs::remove(d / s / "base.toml");
  }
  r = run_cli({"report", (d / "m").string(), "-o", (d / "rep").string()}, d);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(slurp(d / "rep" / "index.html").find("Merged title"), std::string::npos);
  const json c = claims_of(d / "rep");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_TRUE(c[0]["holds"].get<bool>()) << c.dump();
  EXPECT_EQ(c[0]["result"], "p3");
  r = run_cli({"report", (d / "s0").string(), "-o", (d / "rep0").string()}, d);
  EXPECT_EQ(r.status, 0) << r.err;
  fs::remove_all(d);
}

// Defect 7: runs that differ on a third axis are not seeds of one configuration.
TEST(Trust, ClaimsRefuseToPoolRunsThatDifferOnAnotherAxis) {
  const fs::path d = fresh("pool");
  const std::string spec = kHead +
      "[sweep]\n\"model.width\" = [8, 16, 32]\n\"model.rpe\" = [\"none\", \"t5\"]\nseeds = [1, 2]\n"
      "[[claim]]\nkind = \"slope\"\nx = \"model.width\"\ny = \"err\"\nexpect = [-1.2, -0.8]\n"
      "[[claim]]\nkind = \"slope\"\nx = \"model.width\"\ny = \"err\"\nwhere = { \"model.rpe\" = \"t5\" }\nexpect = [-1.2, -0.8]\n"
      "[[claim]]\nkind = \"slope\"\nx = \"model.width\"\ny = \"err\"\nseries = \"model.rpe\"\nexpect = [-1.2, -0.8]\n";
  make_store(d / "store", spec, [](const RunSpec& r, std::string& st, json& s) {
    st = "completed";
    const double w = num(r, "model.width");
    s = {{"err", r.point.at("model.rpe") == "\"t5\"" ? 1.0 / w : 1.0 + 0.001 * double(r.seed)}};
  });
  const Result r = run_cli({"report", (d / "store").string(), "-o", (d / "rep").string()}, d);
  ASSERT_EQ(r.status, 0) << r.err;
  const json c = claims_of(d / "rep");
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c[0].value("verdict", ""), "n/a");
  EXPECT_FALSE(c[0]["holds"].get<bool>());
  EXPECT_NE(c[0]["note"].get<std::string>().find("differ in model.rpe"), std::string::npos) << c[0]["note"];
  EXPECT_TRUE(c[1]["holds"].get<bool>()) << c[1].dump();
  EXPECT_FALSE(c[2]["holds"].get<bool>());  // model.rpe = "none": flat
  EXPECT_EQ(c[2].value("verdict", ""), "refuted");
  EXPECT_TRUE(c[3]["holds"].get<bool>());  // model.rpe = "t5"
  fs::remove_all(d);
}

// Defect 8: run directory names never collide and stay within the file-name limit.
TEST(Trust, RunDirectoryNamesAreDistinctAndShort) {
  EXPECT_NE(run_dir_name("x/model.rpe=\"a b\"/seed=1"), run_dir_name("x/model.rpe=\"a_b\"/seed=1"));
  const std::string long_id = "x/task.lags=[" + std::string(2000, '1') + "]/seed=1";
  EXPECT_LE(run_dir_name(long_id).size(), 255u);
  EXPECT_NE(run_dir_name(long_id), run_dir_name(long_id.substr(0, long_id.size() - 1) + "2"));
  EXPECT_NE(run_dir_name(".."), "..");
}

// Defect 8: bootstrap resamples whose statistic is not finite are counted and noted.
TEST(Trust, NonFiniteBootstrapResamplesAreCounted) {
  const fs::path d = fresh("resamples");
  const std::string spec = kHead +
      "[sweep]\n\"model.width\" = [8, 16, 32]\nseeds = [1, 2]\n"
      "[[claim]]\nkind = \"slope\"\nx = \"model.width\"\ny = \"err\"\nexpect = [-2, 2]\n";
  make_store(d / "store", spec, [](const RunSpec& r, std::string& st, json& s) {
    st = "completed";
    // seed 1 is negative at width 8: every resample drawing only seed 1 has no log slope
    s = {{"err", num(r, "model.width") == 8 && r.seed == 1 ? -1.0 : 3.0}};
  });
  ASSERT_EQ(run_cli({"report", (d / "store").string(), "-o", (d / "rep").string()}, d).status, 0);
  const json c = claims_of(d / "rep")[0];
  EXPECT_NE(c["note"].get<std::string>().find("resamples gave a non-finite statistic"), std::string::npos) << c.dump();
  EXPECT_GT(c.value("resamples_dropped", 0), 300);
  EXPECT_LT(c.value("resamples_dropped", 0), 700);
  fs::remove_all(d);
}

// Defect 1: exactly the changed runs are discarded; the unchanged ones are kept as they were.
TEST(Trust, RerunChangedKeepsTheUnchangedRuns) {
  const fs::path d = fresh("exactly");
  auto spec = [](const std::string& steps) {
    std::string s = tiny_spec(2);
    s.replace(s.find("seeds = [1, 2]"), std::string("seeds = [1, 2]").size(), "\"train.steps\" = " + steps + "\nseeds = [1]");
    return s;
  };
  spit(d / "spec.toml", spec("[2, 3]"));
  const std::string sw = (d / "sweep").string();
  ASSERT_EQ(run_cli({"sweep", (d / "spec.toml").string(), "-j", "1", "--out", sw}, d).status, 0);
  auto rows = [&]() {
    std::map<std::string, std::string> out;  // steps axis value -> status, attempts, finished
    sqlite3* h = nullptr;
    sqlite3_open((d / "sweep" / "runs.db").string().c_str(), &h);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(h, "SELECT point, status, attempts, finished FROM runs", -1, &st, nullptr);
    while (sqlite3_step(st) == SQLITE_ROW) {
      const json p = json::parse(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
      out[p["train.steps"].get<std::string>()] = std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 1))) + " " +
                                                 std::to_string(sqlite3_column_int(st, 2)) + " " +
                                                 std::to_string(sqlite3_column_double(st, 3));
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    return out;
  };
  const auto before = rows();
  ASSERT_EQ(before.size(), 2u);
  spit(d / "spec.toml", spec("[2, 4]"));
  Result r = run_cli({"sweep", (d / "spec.toml").string(), "-j", "1", "--out", sw}, d);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(one_line(r.err).find("train.steps=3/seed=1 is no longer in the spec"), std::string::npos) << r.err;
  r = run_cli({"sweep", (d / "spec.toml").string(), "-j", "1", "--out", sw, "--rerun-changed"}, d);
  ASSERT_EQ(r.status, 0) << r.err;
  const auto after = rows();
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after.at("2"), before.at("2")) << "the unchanged run was kept as it was";
  EXPECT_EQ(after.count("3"), 0u);
  EXPECT_EQ(after.at("4").rfind("completed 1 ", 0), 0u) << after.at("4");
  fs::remove_all(d);
}

// Defect 1: a changed run that a live sweep holds is never discarded under it.
TEST(Trust, RerunChangedRefusesARunALiveSweepHolds) {
  const fs::path d = fresh("held");
  spit(d / "spec.toml", tiny_spec(2));
  const std::string sw = (d / "sweep").string();
  ASSERT_EQ(run_cli({"sweep", (d / "spec.toml").string(), "-j", "1", "--out", sw}, d).status, 0);
  // This test process is alive: it "holds" seed 2.
  sql(d / "sweep" / "runs.db", "UPDATE runs SET status = 'running', owner = '" + Store::self_owner() + "' WHERE seed = 2");
  spit(d / "spec.toml", tiny_spec(7));
  const Result r = run_cli({"sweep", (d / "spec.toml").string(), "-j", "1", "--out", sw, "--rerun-changed"}, d);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(one_line(r.err).find("is running it now"), std::string::npos) << r.err;
  EXPECT_EQ(summary_of(d / "sweep", 1).value("steps", -1), 2);  // nothing was discarded
  fs::remove_all(d);
}

// Review of defect 2: runs the store lacks, or whose stored point disagrees with their id,
// are not runs of the claim: the spec's run counts as not run.
TEST(Trust, RunsMissingFromTheStoreOrMisplacedInItCountAsNotRun) {
  const fs::path d = fresh("missing");
  const std::string spec = kHead + "[sweep]\n\"model.width\" = [8, 16, 32]\nseeds = [1, 2, 3]\n"
                                   "[[claim]]\nkind = \"slope\"\nx = \"model.width\"\ny = \"err\"\nexpect = [-0.7, -0.3]\n";
  auto outcome = [](const RunSpec& r, std::string& st, json& s) {
    st = "completed";
    s = {{"err", std::pow(num(r, "model.width"), -0.5) * (1 + 0.01 * double(r.seed))}};
  };
  make_store(d / "lacks", spec, outcome);
  sql(d / "lacks" / "runs.db", "DELETE FROM runs WHERE point LIKE '%\"32\"%'");
  ASSERT_EQ(run_cli({"report", (d / "lacks").string(), "-o", (d / "r1").string()}, d).status, 0);
  json c = claims_of(d / "r1")[0];
  EXPECT_EQ(c["verdict"], "n/a");
  EXPECT_NE(c["note"].get<std::string>().find("synthetic/model.width=32/seed=1 (not run)"), std::string::npos) << c["note"];

  make_store(d / "moved", spec, outcome);
  sql(d / "moved" / "runs.db", "UPDATE runs SET point = '{\"model.width\":\"8\"}' WHERE point LIKE '%\"32\"%'");
  ASSERT_EQ(run_cli({"report", (d / "moved").string(), "-o", (d / "r2").string()}, d).status, 0);
  c = claims_of(d / "r2")[0];
  EXPECT_EQ(c["verdict"], "n/a");
  EXPECT_EQ(c["points"][0]["runs"], 3) << "width 8 keeps its own three seeds";
  EXPECT_NE(slurp(d / "r2" / "index.html").find("disagrees with its id"), std::string::npos);
  fs::remove_all(d);
}

// A store that is not one (a table without the expected columns) is bad input: exit 2.
TEST(Trust, AMalformedStoreIsBadInputNotACrash) {
  const fs::path d = fresh("schema");
  make_store(d / "store", kHead + "[sweep]\n\"model.width\" = [8, 16]\n", [](const RunSpec&, std::string& st, json& s) {
    st = "completed";
    s = {{"err", 1.0}};
  });
  sql(d / "store" / "runs.db", "DROP TABLE runs; CREATE TABLE runs(id TEXT, experiment TEXT)");
  const Result r = run_cli({"report", (d / "store").string(), "-o", (d / "rep").string()}, d);
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(one_line(r.err).find((d / "store" / "runs.db").string() + ": not a usable result store"), std::string::npos) << r.err;
  fs::remove_all(d);
}

// Review of defect 7: a key zipped with x moves with it; it is not another axis.
TEST(Trust, ClaimsAlongAZippedAxisAreEvaluated) {
  const fs::path d = fresh("zip");
  const std::string spec = kHead +
      "[sweep]\n\"model.heads\" = [1, 2, 4]\n\"model.head_dim\" = [8, 4, 2]\nzip = [[\"model.heads\", \"model.head_dim\"]]\n"
      "seeds = [1, 2]\n[[claim]]\nkind = \"monotone\"\nx = \"model.heads\"\ny = \"err\"\nexpect = \"decreasing\"\n";
  make_store(d / "store", spec, [](const RunSpec& r, std::string& st, json& s) {
    st = "completed";
    s = {{"err", 1.0 / num(r, "model.heads") + 0.001 * double(r.seed)}};
  });
  ASSERT_EQ(run_cli({"report", (d / "store").string(), "-o", (d / "rep").string()}, d).status, 0);
  const json c = claims_of(d / "rep")[0];
  EXPECT_EQ(c["verdict"], "holds") << c.dump();
  fs::remove_all(d);
}
