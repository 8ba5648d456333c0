// The bad-input matrix: every case exits 2 with one line on stderr naming what and where,
// and leaves no output behind (its output directory is not created, or not changed).
// ATTNLAB_MATRIX_MD=FILE also writes the matrix as a Markdown table (the README's).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "cli_run.h"
#include "io/npy.h"
#include "io/safetensors.h"

using namespace attnlab;
namespace fs = std::filesystem;

namespace {

const fs::path& D() { return cli_test::scratch_dir("matrix"); }
std::string d(const std::string& rel) { return (D() / rel).string(); }
std::string src(const std::string& rel) { return std::string(ATTNLAB_SOURCE_DIR) + "/" + rel; }
void put(const std::string& rel, const std::string& text) { std::ofstream(D() / rel, std::ios::binary) << text; }

using cli_test::npy_v1;
const auto& npy = npy_v1;

const char* kOk =
    "[task]\nkind = \"sparse_memory\"\nseq_len = 16\nd_in = 2\nlags = [1, 3]\nn_train = 64\nn_val = 16\n"
    "[model]\nd_model = 16\nlayers = 2\nheads = 2\nffn = 16\n[train]\nsteps = 6\nbatch = 8\neval_every = 3\nthreads = 1\n";

// The files the cases read, made once.
void fixtures() {
  static bool done = false;
  if (done) return;
  done = true;
  put("ok.toml", kOk);
  put("unknown.toml", std::string(kOk) + "hedas = 3\n");
  put("typed.toml", "[train]\nsteps = \"many\"\n");
  put("syntax.toml", "[task]\nseq_len = \n");
  put("npy.toml", "[task]\nkind = \"npy\"\ninputs = \"" + d("x.npy") + "\"\ntargets = \"" + d("y.npy") +
                      "\"\n[model]\nd_model = 16\nlayers = 1\nheads = 2\nffn = 16\n[train]\nsteps = 4\nbatch = 4\neval_every = 2\nthreads = 1\n");
  std::vector<float> x(20 * 8 * 3), y(20 * 8);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(std::sin(double(i)));
  for (size_t i = 0; i < y.size(); ++i) y[i] = float(std::cos(double(i)));
  write_npy_f32(d("x.npy"), {20, 8, 3}, x.data());
  write_npy_f32(d("y.npy"), {20, 8, 1}, y.data());
  write_npy_f32(d("y19.npy"), {19, 8, 1}, y.data());
  write_npy_f32(d("x2d.npy"), {20, 24}, x.data());
  write_npy_f32(d("x4.npy"), {5, 16, 4}, x.data());
  std::vector<float> xs(20 * 16 * 2, 0.25f);
  write_npy_f32(d("xs.npy"), {20, 16, 2}, xs.data());
  std::vector<float> xn = x;
  xn[3 * 24 + 7] = std::numeric_limits<float>::quiet_NaN();
  write_npy_f32(d("xnan.npy"), {20, 8, 3}, xn.data());
  put("empty.npy", "");
  put("trunc.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (20, 8, 3), }", std::string(100, '\0')));
  put("bigend.npy", npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2, 1), }", std::string(16, '\0')));
  put("cplx.npy", npy("{'descr': '<c8', 'fortran_order': False, 'shape': (2, 2, 1), }", std::string(32, '\0')));
  put("notnpy.npy", "x,y\n1,2\n");
  // Checkpoints: a real one, and broken copies.
  const auto r = cli_test::run("train " + d("ok.toml") + " --out " + d("run"));
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string ck = d("run/model.safetensors");
  std::ifstream in(ck, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string raw = ss.str();
  put("trunc.safetensors", raw.substr(0, raw.size() / 2));
  put("tiny.safetensors", raw.substr(0, 5));
  std::string hdr = raw;
  hdr[8] = '#';  // the JSON header's first byte
  put("badhdr.safetensors", hdr);
  TensorFile f = read_safetensors(ck);
  const std::string first = f.order.front();
  float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(f.tensors[first].bytes.data(), &nan, 4);
  write_safetensors(d("nan.safetensors"), f);
  TensorFile g = read_safetensors(ck);
  g.metadata.clear();
  write_safetensors(d("foreign.safetensors"), g);
  fs::create_directories(D() / "fake");
  fs::copy_file(ck, D() / "fake" / "checkpoint.safetensors");
  // Specs.
  const std::string head = "[experiment]\nname = \"m\"\ntitle = \"m\"\nresult = \"p2\"\ndescription = \"m\"\n[base]\nseed = 1\n"
                           "[base.task]\nkind = \"sparse_memory\"\nseq_len = 16\nd_in = 2\nlags = [1, 3]\n";
  put("s_zip.toml", head + "[sweep]\n\"model.heads\" = [1, 2]\n\"model.head_dim\" = [4]\nzip = [[\"model.heads\", \"model.head_dim\"]]\n");
  put("s_twozip.toml", head + "[sweep]\n\"model.heads\" = [1, 2]\n\"model.head_dim\" = [4, 8]\n\"model.ffn\" = [4, 8]\n"
                              "zip = [[\"model.heads\", \"model.head_dim\"], [\"model.heads\", \"model.ffn\"]]\n");
  put("s_claim.toml", head + "[sweep]\n\"model.heads\" = [1, 2]\n[[claim]]\nkind = \"steep\"\nx = \"model.heads\"\ny = \"min_val_loss\"\nexpect = 1\n");
  put("s_axis.toml", head + "[sweep]\n\"model.heads\" = [2, 0]\n");
  put("s_twice.toml", head + "[sweep]\n\"model.heads\" = [1, 2]\n\"model.heads\" = [3]\n");
  put("file_not_dir", "x");
}

struct Case {
  const char* category;
  std::string what, args, needle;
  std::string no_output;  // a path that must not exist afterwards ("" = none)
  std::string shell_prefix = "";
};

std::vector<Case> cases() {
  const std::string ok = d("ok.toml"), npyc = d("npy.toml"), ck = d("run/model.safetensors");
  auto out = [](const std::string& n) { return d("out_" + n); };
  return {
      // Configs
      {"config", "unknown key in a file", "train " + d("unknown.toml") + " --out " + out("c1"), d("unknown.toml") + ": train.hedas: unknown key (allowed in [train]:", out("c1")},
      {"config", "unknown key on the command line", "train " + ok + " model.hedas=3 --out " + out("c2"), "command line: model.hedas: unknown key (allowed in [model]:", out("c2")},
      {"config", "wrong type", "train " + d("typed.toml") + " --out " + out("c3"), "typed.toml: train.steps: expected an integer, got a string", out("c3")},
      {"config", "TOML syntax error", "train " + d("syntax.toml") + " --out " + out("c4"), "syntax.toml:2:11: TOML syntax error:", out("c4")},
      {"config", "out of range (heads = 0)", "train " + ok + " model.heads=0 --out " + out("c5"), "command line: model.heads: every entry must be >= 1 (got 0)", out("c5")},
      {"config", "out of range (lr < 0)", "train " + ok + " train.lr=-1 --out " + out("c6"), "command line: train.lr: must be a finite number > 0 (got -1)", out("c6")},
      {"config", "per-layer list of the wrong length", "train " + ok + " model.heads=[2,2,2] --out " + out("c7"),
       "command line: model.heads: has 3 entries but model.layers = 2 (give one entry per layer, or a single integer; "
       "one layer's per-head sizes are a nested list, e.g. [[16, 8]])", out("c7")},
      {"config", "per-head list of the wrong length", "train " + ok + " model.heads=[4,2] \"model.head_dim=[[8,8,4],4]\" --out " + out("c7h"),
       "command line: model.head_dim: layer 0 lists 3 heads [8, 8, 4] but model.heads gives it 4", out("c7h")},
      {"config", "logit cap <= 0", "train " + ok + " model.logit_cap=0 --out " + out("c7c"),
       "command line: model.logit_cap: must be a finite number > 0 (got 0)", out("c7c")},
      {"config", "odd width with symmetric init", "train " + ok + " model.kind=shallow_attention model.width=7 --out " + out("c8"),
       "command line: model.width: must be even for init = \"symmetric\" (got 7)", out("c8")},
      {"config", "value not allowed", "train " + ok + " model.rpe=alibi --out " + out("c9"), "command line: model.rpe: 'alibi' is not allowed (allowed: none, lin, log, t5)", out("c9")},
      {"config", "lag beyond the sequence", "train " + ok + " task.lags=[1,16] --out " + out("c10"), "command line: task.lags: lag 16 must be < task.seq_len (16)", out("c10")},
      {"config", "key of another task family", "train " + ok + " task.anchors=3 --out " + out("c11"),
       "command line: task.anchors: not a key of task.kind = \"sparse_memory\" but of teacher_student_ntk", out("c11")},
      {"config", "projection radii of the wrong length", "train " + ok + " train.rho=[1,2] --out " + out("c12"),
       "command line: train.rho: expected a number or a list of three numbers [rho_c, rho_u, rho_w]", out("c12")},
      {"config", "loss positions beyond the sequence", "train " + ok + " task.loss_from=16 --out " + out("c17"),
       "command line: task.loss_from: must be < task.seq_len (16): no position would carry loss", out("c17")},
      {"config", "the least error asked of a model it does not describe", "train " + ok + " train.best_fit=true --out " + out("c18"),
       "train.best_fit: needs one DP-free layer: model.kind = \"transformer\", layers = 1, ffn = 0, dot_product = false, norm = \"none\", "
       "pos = \"none\", rpe = \"lin\" (learnable) or \"log\"", out("c18")},
      {"config", "negative checkpoint interval", "train " + ok + " train.checkpoint_every=-5 --out " + out("c13"), "command line: train.checkpoint_every: must be >= 0 (got -5)", out("c13")},
      {"config", "a device for a config (endless)", "train /dev/zero --out " + out("c15"), "/dev/zero: config is not a regular file and gives more than 256 MiB (a device?)", out("c15")},
      {"config", "a directory for a config", "train " + D().string() + " --out " + out("c16"), D().string() + ": cannot open config (a directory, not a file)", out("c16")},
      {"config", "missing config file", "train " + d("nope.toml") + " --out " + out("c14"), d("nope.toml") + ": cannot open config (no such file or not readable)", out("c14")},
      // Command lines
      {"command line", "unknown subcommand", "frobnicate", "attnlab: error: 'frobnicate' is not a subcommand (one of: train, errors, sweep, merge, report, reproduce, bench, eval, compress, plan)", ""},
      {"command line", "unknown flag", "train " + ok + " --bogus --out " + out("l2"), "attnlab: error: The following argument was not expected: --bogus", out("l2")},
      {"command line", "override without =", "train " + ok + " model.heads --out " + out("l3"), "command line: override 'model.heads' is not of the form key=value", out("l3")},
      {"command line", "override that is not TOML", "train " + ok + " model.heads=[1, --out " + out("l4"), "command line: override 'model.heads=[1,': the value is not valid TOML", out("l4")},
      {"command line", "shard out of range", "sweep " + src("tests/data/tiny_sweep.toml") + " --shard 3/2 --out " + out("l5"), "--shard: '3/2' is not i/N with 0 <= i < N", out("l5")},
      {"command line", "unknown built-in experiment", "reproduce --only p9 --out " + out("l6"), "--only: 'p9' is not one of p1, p2, p3", out("l6")},
      {"command line", "--predict without --inputs", "eval " + ck + " --predict " + out("l7.npy"), "--predict: needs --inputs (the .npy to predict on)", out("l7.npy")},
      {"command line", "--resume and another --out", "train " + ok + " --resume " + d("run") + " --out " + out("l8"),
       "--resume " + d("run") + " --out " + out("l8") + ": a resumed run writes to its own directory (drop --out)", out("l8")},
      {"command line", "--resume without a checkpoint", "train " + ok + " --resume " + out("l9"),
       out("l9") + "/checkpoint.safetensors: no checkpoint to resume from (the run wrote none: start it again without --resume)", out("l9")},
      // Data files
      {"data", "missing .npy", "train " + npyc + " task.inputs=\"" + d("nope.npy") + "\" --out " + out("d1"), d("nope.npy") + ": cannot open .npy file for task.inputs (no such file or not readable)", out("d1")},
      {"data", "empty .npy", "train " + npyc + " task.inputs=\"" + d("empty.npy") + "\" --out " + out("d2"), d("empty.npy") + " (task.inputs): not a valid .npy file: empty file (0 bytes)", out("d2")},
      {"data", "not an .npy (CSV)", "train " + npyc + " task.inputs=\"" + d("notnpy.npy") + "\" --out " + out("d3"), d("notnpy.npy") + " (task.inputs): not a valid .npy file:", out("d3")},
      {"data", "wrong shape (2-D float inputs)", "train " + npyc + " task.inputs=\"" + d("x2d.npy") + "\" --out " + out("d4"),
       "task.inputs: " + d("x2d.npy") + " has shape [20, 24] of f4: expected [N, T, d_in] (real inputs) or [N, T] of integers (tokens)", out("d4")},
      {"data", "wrong dtype (complex)", "train " + npyc + " task.inputs=\"" + d("cplx.npy") + "\" --out " + out("d5"), d("cplx.npy") + " (task.inputs): not a valid .npy file: unsupported dtype", out("d5")},
      {"data", "big-endian data", "train " + npyc + " task.inputs=\"" + d("bigend.npy") + "\" --out " + out("d6"), d("bigend.npy") + " (task.inputs): not a valid .npy file: big-endian", out("d6")},
      {"data", "NaN inside", "train " + npyc + " task.inputs=\"" + d("xnan.npy") + "\" --out " + out("d7"), d("xnan.npy") + " (task.inputs): NaN at index [3, 2, 1] (flat index 79)", out("d7")},
      {"data", "truncated data", "train " + npyc + " task.inputs=\"" + d("trunc.npy") + "\" --out " + out("d8"), d("trunc.npy") + " (task.inputs): not a valid .npy file: truncated data: shape (20, 8, 3) of f4 needs 1920 data bytes, the file has 100", out("d8")},
      {"data", "inputs and targets of different lengths", "train " + npyc + " task.targets=\"" + d("y19.npy") + "\" --out " + out("d9"),
       "task.targets: " + d("y19.npy") + " has 19 rows, task.inputs has 20", out("d9")},
      {"data", "val_inputs without val_targets", "train " + npyc + " task.val_inputs=\"" + d("x.npy") + "\" --out " + out("d10"),
       "command line: task.val_inputs: give both task.val_inputs and task.val_targets, or neither", out("d10")},
      {"data", "inputs to predict on of the wrong width", "eval " + ck + " --inputs " + d("x4.npy") + " --predict " + out("d11.npy"),
       d("x4.npy") + " (--inputs): the model reads [N, T, 2] real inputs, the file has rank 3 with d_in 4", out("d11.npy")},
      {"data", "text corpus missing", "train " + ok + " task.kind=text_lm task.path=\"" + d("nope.txt") + "\" --out " + out("d12"),
       "task.path: '" + d("nope.txt") + "' (" + d("nope.txt") + "): no such file", out("d12")},
      // Checkpoints
      {"checkpoint", "truncated", "eval " + d("trunc.safetensors"), d("trunc.safetensors") + ": not a valid safetensors file: tensor '", ""},
      {"checkpoint", "shorter than its header size", "eval " + d("tiny.safetensors"), d("tiny.safetensors") + ": not a valid safetensors file: shorter than 8 bytes", ""},
      {"checkpoint", "corrupted header", "eval " + d("badhdr.safetensors"), d("badhdr.safetensors") + ": not a valid safetensors file: header is not JSON", ""},
      {"checkpoint", "NaN in a tensor", "eval " + d("nan.safetensors"), d("nan.safetensors") + ": tensor '", ""},
      {"checkpoint", "not attnlab's (no config)", "eval " + d("foreign.safetensors"), d("foreign.safetensors") + ": not an attnlab checkpoint (its metadata has no attnlab \"config\")", ""},
      {"checkpoint", "shapes that do not fit the config", "eval " + ck + " model.d_model=32", ck + ": tensor '", ""},
      {"checkpoint", "a model file where a training checkpoint belongs", "train " + ok + " --resume " + d("fake"),
       d("fake/checkpoint.safetensors") + ": not an attnlab training checkpoint (metadata format is 'attnlab', expected 'attnlab-train-state-1')", ""},
      // Sweep specs
      {"sweep spec", "unequal zip lengths", "sweep " + d("s_zip.toml") + " --out " + out("s1"),
       d("s_zip.toml") + ": sweep.zip: the lists of model.heads and model.head_dim differ in length (2 vs 1)", out("s1")},
      {"sweep spec", "conflicting axes (one key in two zip groups)", "sweep " + d("s_twozip.toml") + " --out " + out("s2"),
       d("s_twozip.toml") + ": sweep.zip: 'model.heads' is in two zip groups", out("s2")},
      {"sweep spec", "an axis given twice", "sweep " + d("s_twice.toml") + " --out " + out("s3"), d("s_twice.toml") + ":", out("s3")},
      {"sweep spec", "unknown claim kind", "sweep " + d("s_claim.toml") + " --out " + out("s4"),
       d("s_claim.toml") + ": claim[0].kind: 'steep' is not allowed (allowed: slope, flat, monotone, compare, ratio, plateau, optimum, level, crossing)", out("s4")},
      {"sweep spec", "an axis value that is bad input", "sweep " + d("s_axis.toml") + " --out " + out("s5"),
       d("s_axis.toml") + ": run m/model.heads=0/seed=1 of the sweep: model.heads: every entry must be >= 1 (got 0)", out("s5")},
      {"sweep spec", "not a spec (no [experiment])", "sweep " + ok + " --out " + out("s6"), ok + ": experiment: a spec needs an [experiment] table", out("s6")},
      {"sweep spec", "no such scale", "sweep " + src("tests/data/tiny_sweep.toml") + " --scale huge --out " + out("s7"), "scale.huge: no such scale in this spec", out("s7")},
      // Output
      {"output", "output directory that cannot be created", "train " + ok + " --out /proc/attnlab_out", "/proc/attnlab_out: cannot create the output directory:", "/proc/attnlab_out"},
      {"output", "output path that is a file", "train " + ok + " --out " + d("file_not_dir"), d("file_not_dir") + ": cannot create the output directory:", ""},
      {"output", "full disk (file size limit)", "train " + ok + " --out " + out("o3"), out("o3") + "/metrics.jsonl: write failed (disk full?)", "",
       "trap '' XFSZ; ulimit -f 2; "},
      {"output", "full disk for a prediction", "eval " + ck + " --inputs " + d("xs.npy") + " --predict " + out("o4.npy"), out("o4.npy") + ": write failed (disk full?)", out("o4.npy"),
       "trap '' XFSZ; ulimit -f 1; "},
  };
}

}  // namespace

TEST(BadInput, EveryCaseExitsTwoWithOneLineAndNoOutput) {
  fixtures();
  if (HasFatalFailure()) return;
  std::string md = "| category | case | message (stderr) |\n|---|---|---|\n";
  int n = 0;
  for (const Case& c : cases()) {
    SCOPED_TRACE(std::string(c.category) + ": " + c.what);
    cli_test::Result r;
    if (c.shell_prefix.empty()) {
      r = cli_test::run(c.args);
    } else {  // a file size limit stands in for a full disk (EFBIG on the write past it)
      const std::string err = d("sh_err.txt"), outp = d("sh_out.txt");
      const std::string cmd = "sh -c \"" + c.shell_prefix + "exec " + ATTNLAB_BINARY + " " + c.args + "\" >" + outp + " 2>" + err + " </dev/null";
      const int st = std::system(cmd.c_str());
      r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      std::ifstream f(err);
      std::stringstream s;
      s << f.rdbuf();
      r.err = s.str();
    }
    EXPECT_EQ(r.status, 2) << c.args << "\n" << r.err;
    std::string e = r.err;
    while (!e.empty() && e.front() == '\n') e.erase(e.begin());
    EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << r.err;
    EXPECT_NE(e.find(c.needle), std::string::npos) << "stderr: " << r.err << "\nexpected to contain: " << c.needle;
    if (!c.no_output.empty()) EXPECT_FALSE(fs::exists(c.no_output)) << c.no_output << " was left behind";
    // No half-written file anywhere in the scratch directory (atomic writes leave .NAME.tmp on failure otherwise).
    for (const auto& p : fs::recursive_directory_iterator(D()))
      EXPECT_EQ(p.path().filename().string().find(".tmp"), std::string::npos) << p.path();
    std::string msg = e.substr(0, e.find('\n'));
    const std::string dd = D().string();
    for (size_t at; (at = msg.find(dd)) != std::string::npos;) msg.replace(at, dd.size(), "D");
    for (size_t at; (at = msg.find('|')) != std::string::npos;) msg.replace(at, 1, "\\|");
    md += "| " + std::string(c.category) + " | " + c.what + " | `" + msg + "` |\n";
    ++n;
  }
  EXPECT_GE(n, 40);
  if (const char* p = std::getenv("ATTNLAB_MATRIX_MD")) std::ofstream(p) << md;
}
