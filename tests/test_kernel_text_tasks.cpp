// The paper-2 tasks kernel_memory and text_lm against slow, direct evaluations of their
// documented formulas (see test_memory_tasks.cpp for the others):
//   kernel_memory   y_t = f((x * rho_1)(t), ...), rho exp or poly, unit mass over s <= t
//   text_lm         (token, target) = (text[i], text[i+1]), 90/5/5 contiguous disjoint split, bad
//                   paths, a rewritten file read anew
// and that every task is a pure function of (seed, split, index).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <thread>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cli_run.h"
#include "core/error.h"
#include "core/rng.h"
#include "io/config.h"
#include "memory_tasks_util.h"
#include "tasks/task.h"

using namespace attnlab;
using namespace memtask_test;
namespace fs = std::filesystem;

namespace {
using cli_test::Result;
using cli_test::expect_bad_input;
using cli_test::run;
}  // namespace

// ======================= kernel_memory =======================

namespace {
// rho(s), s = 0..T-1: e^{-beta s} (exp) or (1 + s)^{-beta} (poly), unnormalized.
std::vector<double> kernel_of(const std::string& decay, double beta, int T) {
  std::vector<double> r(static_cast<size_t>(T));
  for (int s = 0; s < T; ++s) r[size_t(s)] = decay == "exp" ? std::exp(-beta * s) : std::pow(1.0 + s, -beta);
  return r;
}

// (x * rho)(t) = sum_{s=0}^{t} rho(s) x_{t-s} / sum_{s=0}^{t} rho(s) (the kernel truncated at
// the sequence start, unit mass over what remains) of coordinate d of sample smp.
double conv(const Batch& b, int smp, int t, const std::vector<double>& rho, int D = 1, int d = 0) {
  double u = 0, mass = 0;
  for (int s = 0; s <= t; ++s) {
    u += rho[size_t(s)] * double(b.x[(size_t(smp) * b.T + t - s) * D + d]);
    mass += rho[size_t(s)];
  }
  return u / mass;
}
}  // namespace

TEST(MemoryTasks, KernelOneMemoryIsAScaledConvolution) {
  const int T = 40;
  for (const char* decay : {"exp", "poly"})
    for (const char* inputs : {"gaussian", "sign"}) {
      SCOPED_TRACE(std::string(decay) + " " + inputs);
      const double beta = std::string(decay) == "exp" ? 0.15 : 0.8;
      const RunConfig c = config("kind = \"kernel_memory\"\nseq_len = 40\nd_in = 1\nd_out = 1\nmemories = 1\nreadout = \"linear\"\n",
                                 {"task.decay=" + std::string(decay), "task.beta=" + std::to_string(beta),
                                  "task.inputs=" + std::string(inputs)});
      const uint64_t seed = 31;
      auto task = make_task(c.task, seed);
      const auto rho = kernel_of(decay, beta, T);
      // The documented A (stream "kernel_memory/A", std 1/sqrt(1)), for the report only: A is
      // recovered from the data below.
      const double A_doc = normal_matrix(seed, "kernel_memory/A", 1, 1.0)[0];
      for (Split sp : {Split::train, Split::val}) {
        const auto idx = iota(sp == Split::train ? 2 : 300, 6);
        Batch b;
        task->fill(sp, idx.data(), 6, b);
        for (float m : b.mask) EXPECT_EQ(m, 1.f);
        if (std::string(inputs) == "sign") {
          for (float v : b.x) ASSERT_TRUE(v == 1.f || v == -1.f);
        }
        // A from the position with the largest |u|.
        double best = 0, A = 0;
        for (int s = 0; s < 6; ++s)
          for (int t = 0; t < T; ++t) {
            const double u = conv(b, s, t, rho);
            if (std::fabs(u) > best) { best = std::fabs(u); A = b.y[size_t(s) * T + t] / u; }
          }
        EXPECT_TRUE(near_rel(A, A_doc)) << "A recovered vs the documented stream";
        for (int s = 0; s < 6; ++s)
          for (int t = 0; t < T; ++t)
            EXPECT_TRUE(near_rel(b.y[size_t(s) * T + t], A * conv(b, s, t, rho))) << "sample " << s << " t " << t;
      }
    }
}

// task.loss_from: no loss before it; positions = "last": one target per sequence, the same
// value as the last position's target of the all-positions task, and the same inputs.
TEST(MemoryTasks, KernelLossFromAndLastPosition) {
  const std::string base = "kind = \"kernel_memory\"\nseq_len = 24\nd_in = 1\nd_out = 1\nmemories = 1\nreadout = \"linear\"\n";
  auto all = make_task(config(base, {"task.loss_from=10"}).task, 5);
  auto last = make_task(config(base, {"task.positions=last"}).task, 5);
  EXPECT_FALSE(all->last_only());
  EXPECT_TRUE(last->last_only());
  const auto idx = iota(0, 4);
  Batch a, l;
  all->fill(Split::train, idx.data(), 4, a);
  last->fill(Split::train, idx.data(), 4, l);
  ASSERT_EQ(l.y.size(), 4u);
  ASSERT_EQ(l.mask.size(), 4u);
  EXPECT_EQ(a.x, l.x);
  for (int s = 0; s < 4; ++s) {
    for (int t = 0; t < 24; ++t) EXPECT_EQ(a.mask[size_t(s) * 24 + t], t >= 10 ? 1.f : 0.f);
    EXPECT_EQ(l.mask[size_t(s)], 1.f);
    EXPECT_FLOAT_EQ(l.y[size_t(s)], a.y[size_t(s) * 24 + 23]);
  }
  LagTarget t;
  ASSERT_TRUE(last->lag_target(t));
  EXPECT_EQ(t.positions, std::vector<int>{23});
  ASSERT_TRUE(all->lag_target(t));
  EXPECT_EQ(t.positions.front(), 10);
  EXPECT_EQ(t.positions.size(), 14u);
}

// memories = 2, beta per memory: y_t = a_1 u_1(t) + a_2 u_2(t); the 1x2 A by least squares,
// then the fit must be exact at every position.
TEST(MemoryTasks, KernelTwoMemoriesWithOwnBetas) {
  const int T = 32;
  for (const char* decay : {"exp", "poly"}) {
    SCOPED_TRACE(decay);
    const std::vector<double> betas = std::string(decay) == "exp" ? std::vector<double>{0.05, 0.6} : std::vector<double>{0.6, 2.0};
    std::ostringstream bs;
    bs << "task.beta=[" << betas[0] << ", " << betas[1] << "]";
    const RunConfig c = config("kind = \"kernel_memory\"\nseq_len = 32\nd_in = 1\nd_out = 1\nmemories = 2\nreadout = \"linear\"\n",
                               {"task.decay=" + std::string(decay), bs.str()});
    ASSERT_EQ(c.task.beta, betas);
    const uint64_t seed = 8;
    auto task = make_task(c.task, seed);
    const auto r1 = kernel_of(decay, betas[0], T), r2 = kernel_of(decay, betas[1], T);
    const auto A_doc = normal_matrix(seed, "kernel_memory/A", 2, 1 / std::sqrt(2.0));
    for (Split sp : {Split::train, Split::val}) {
      const auto idx = iota(sp == Split::train ? 0 : 50, 6);
      Batch b;
      task->fill(sp, idx.data(), 6, b);
      for (float m : b.mask) EXPECT_EQ(m, 1.f);
      double s11 = 0, s12 = 0, s22 = 0, sy1 = 0, sy2 = 0;
      for (int s = 0; s < 6; ++s)
        for (int t = 0; t < T; ++t) {
          const double u1 = conv(b, s, t, r1), u2 = conv(b, s, t, r2), y = b.y[size_t(s) * T + t];
          s11 += u1 * u1; s12 += u1 * u2; s22 += u2 * u2; sy1 += y * u1; sy2 += y * u2;
        }
      const double det = s11 * s22 - s12 * s12;
      ASSERT_GT(det, 1e-6 * s11 * s22);
      const double a1 = (s22 * sy1 - s12 * sy2) / det, a2 = (s11 * sy2 - s12 * sy1) / det;
      EXPECT_TRUE(near_rel(a1, A_doc[0])) << "a_1 vs the documented stream";
      EXPECT_TRUE(near_rel(a2, A_doc[1])) << "a_2 vs the documented stream";
      for (int s = 0; s < 6; ++s)
        for (int t = 0; t < T; ++t)
          EXPECT_TRUE(near_rel(b.y[size_t(s) * T + t], a1 * conv(b, s, t, r1) + a2 * conv(b, s, t, r2)))
              << "sample " << s << " t " << t;
    }
  }
}

// Parity of the convolutions' signs, d_in 2: f sees memories x coordinates signs.
TEST(MemoryTasks, KernelParityOfTheConvolutionSigns) {
  const int T = 16, D = 2;
  const RunConfig c = config(
      "kind = \"kernel_memory\"\nseq_len = 16\nd_in = 2\nd_out = 1\nmemories = 2\ndecay = \"exp\"\nbeta = [0.1, 1.0]\n"
      "readout = \"parity\"\ninputs = \"sign\"\n");
  auto task = make_task(c.task, 4);
  const auto r1 = kernel_of("exp", 0.1, T), r2 = kernel_of("exp", 1.0, T);
  const auto idx = iota(0, 8);
  Batch b;
  task->fill(Split::val, idx.data(), 8, b);
  for (int s = 0; s < 8; ++s)
    for (int t = 0; t < T; ++t) {
      double prod = 1;
      for (const auto* r : {&r1, &r2})
        for (int d = 0; d < D; ++d) {
          prod *= sgn(conv(b, s, t, *r, D, d));
        }
      EXPECT_EQ(b.y[size_t(s) * T + t], float(prod)) << "sample " << s << " t " << t;
    }
}

// ======================= text_lm =======================

namespace {
// 2000 known bytes (every value 0..255 occurs), written to a file of its own per call.
std::string text_bytes(size_t n) {
  std::string s(n, '\0');
  uint32_t st = 12345;
  for (size_t i = 0; i < n; ++i) {
    st = st * 1664525u + 1013904223u;
    s[i] = char(uint8_t(st >> 24));
  }
  return s;
}

std::string write_text(const std::string& name, const std::string& content) {
  const fs::path p = scratch("text") / name;
  std::ofstream f(p, std::ios::binary);
  f << content;
  return p.string();
}

const std::string kTextTask = "kind = \"text_lm\"\nseq_len = 16\n";
}  // namespace

TEST(MemoryTasks, TextLmWindowsAreConsecutiveBytesInTheirSplit) {
  const size_t N = 2000;
  const size_t bounds[4] = {0, N * 9 / 10, N * 19 / 20, N};  // training, validation, test text: 1800, 100, 100 bytes
  const int T = 16;
  const std::string text = text_bytes(N);
  const std::string path = write_text("windows.bin", text);
  const RunConfig c = config(kTextTask, {"task.path=" + path});
  EXPECT_EQ(c.task.vocab, 256);
  EXPECT_EQ(c.model.vocab, 256);
  EXPECT_EQ(c.train.loss, "ce");
  auto task = make_task(c.task, 77);
  EXPECT_EQ(task->vocab(), 256);
  const unsigned char* u = reinterpret_cast<const unsigned char*>(text.data());
  for (Split sp : {Split::train, Split::val, Split::test}) {
    SCOPED_TRACE("split " + std::to_string(int(sp)));
    const int B = 150;
    const auto idx = iota(0, B);
    Batch b;
    task->fill(sp, idx.data(), B, b);
    ASSERT_EQ(b.tokens.size(), size_t(B) * T);
    ASSERT_EQ(b.targets.size(), size_t(B) * T);
    for (float m : b.mask) EXPECT_EQ(m, 1.f);
    size_t lo_seen = N, hi_seen = 0;
    for (int s = 0; s < B; ++s) {
      const int* tok = b.tokens.data() + size_t(s) * T;
      const int* tgt = b.targets.data() + size_t(s) * T;
      for (int t = 0; t < T; ++t) {
        ASSERT_GE(tok[t], 0);
        ASSERT_LE(tok[t], 255);
        ASSERT_GE(tgt[t], 0);
        ASSERT_LE(tgt[t], 255);
        if (t + 1 < T) {
          ASSERT_EQ(tgt[t], tok[t + 1]) << "the target is the next token";
        }
      }
      // The window's start in the file: every i with text[i + t] = token t, text[i + T] = last target.
      std::vector<size_t> starts;
      for (size_t i = 0; i + T < N; ++i) {
        bool match = u[i + T] == tgt[T - 1];
        for (int t = 0; match && t < T; ++t) match = u[i + t] == tok[t];
        if (match) starts.push_back(i);
      }
      ASSERT_EQ(starts.size(), 1u) << "sample " << s << ": the window is not (exactly once) consecutive bytes of the file";
      const size_t at = starts[0], lo = bounds[int(sp)], hi = bounds[int(sp) + 1];
      EXPECT_GE(at, lo) << "the window starts before its split's text";
      EXPECT_LT(at + T, hi) << "the window (T + 1 bytes) reaches past its split's text";
      lo_seen = std::min(lo_seen, at);
      hi_seen = std::max(hi_seen, at);
    }
    // The windows spread over their split.
    const size_t slack = sp == Split::train ? 100 : 20;
    EXPECT_LT(lo_seen, bounds[int(sp)] + slack);
    EXPECT_GT(hi_seen, bounds[int(sp) + 1] - T - slack);
  }
}

// Defect (issue 23): the text was cached by path for the life of the process (one Python
// session), so a file rewritten in place trained on the old text. A new task reads it anew.
TEST(MemoryTasks, TextLmReadsARewrittenFileAnew) {
  const std::string path = write_text("rewritten.txt", std::string(2000, 'a'));
  auto first_token = [&]() {
    auto task = make_task(config(kTextTask, {"task.path=" + path}).task, 1);
    Batch b;
    const int64_t i = 0;
    task->fill(Split::train, &i, 1, b);
    return b.tokens[0];
  };
  EXPECT_EQ(first_token(), 'a');
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // (file times advance in ticks of a few ms)
  std::ofstream(path, std::ios::binary | std::ios::trunc) << std::string(2000, 'b');
  EXPECT_EQ(first_token(), 'b');
}

TEST(MemoryTasks, TextLmBadPathsExitTwoWithOneLine) {
  const fs::path dir = scratch("badpath");
  {
    std::ofstream f(dir / "text.toml");
    f << "[task]\nkind = \"text_lm\"\nseq_len = 32\n[model]\nd_model = 16\nlayers = 1\nheads = 2\nhead_dim = 8\n[train]\nsteps = 1\n";
  }
  const std::string cfg = (dir / "text.toml").string(), out = " --out " + (dir / "out").string();
  const std::string missing = (dir / "missing.txt").string();
  expect_bad_input("train " + cfg + " task.path=" + missing + out, "task.path: '" + missing + "'");
  expect_bad_input("train " + cfg + " task.path=" + missing + out, "no such file");
  const std::string empty = write_text("empty.txt", "");
  expect_bad_input("train " + cfg + " task.path=" + empty + out, "task.path: '" + empty + "'");
  expect_bad_input("train " + cfg + " task.path=" + empty + out, "empty");
  // 300 bytes: the validation and test texts (15 bytes each) cannot hold a window of seq_len + 1 = 33 bytes.
  const std::string short_text = write_text("short.txt", text_bytes(300));
  expect_bad_input("train " + cfg + " task.path=" + short_text + out, "task.path: '" + short_text + "'");
  expect_bad_input("train " + cfg + " task.path=" + short_text + out, "too few");
  // The path given in the config file: the message names the file and task.path.
  {
    std::ofstream f(dir / "missing.toml");
    f << "[task]\nkind = \"text_lm\"\npath = \"" << missing << "\"\n";
  }
  expect_bad_input("train " + (dir / "missing.toml").string() + out, (dir / "missing.toml").string() + ": task.path: '" + missing + "'");
  // Token inputs need a transformer.
  const std::string ok = write_text("ok.txt", text_bytes(2000));
  expect_bad_input("train " + cfg + " task.path=" + ok + " model.kind=indrnn" + out, "model.kind: 'indrnn'");
}

TEST(MemoryTasks, TextLmConfigErrors) {
  const std::string ok = write_text("cfg_ok.txt", text_bytes(2000));
  auto error_of = [&](const std::vector<std::string>& ov) -> std::string {
    try {
      config(kTextTask, ov);
    } catch (const UserError& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_EQ(error_of({"task.path=" + ok}), "(no error)");
  EXPECT_NE(error_of({"task.path=" + ok, "model.kind=indrnn"}).find("model.kind"), std::string::npos);
  EXPECT_NE(error_of({"task.path=" + ok + ".missing"}).find("task.path"), std::string::npos);
  // A 2000-byte file holds windows of 99 bytes in its validation and test texts (100 bytes each), not of 100.
  EXPECT_EQ(error_of({"task.path=" + ok, "task.seq_len=98"}), "(no error)");
  EXPECT_NE(error_of({"task.path=" + ok, "task.seq_len=99"}).find("task.path"), std::string::npos);
}

// ======================= purity in (seed, split, index) =======================

TEST(MemoryTasks, EveryTaskIsAPureFunctionOfSeedSplitIndex) {
  const std::string text = write_text("pure.bin", text_bytes(2000));
  const std::vector<std::string> tasks = {
      "kind = \"sparse_memory\"\nseq_len = 16\nd_in = 2\nlags = [1, 4, 7]\ninputs = \"sign\"\nreadout = \"parity\"\n",
      "kind = \"sparse_memory\"\nseq_len = 16\nd_in = 2\nd_out = 2\nlags = [1, 4, 7]\nreadout = \"deep_mlp\"\nhidden = 8\n",
      "kind = \"adaptive_memory\"\nseq_len = 16\nvalue_dim = 2\nmax_pointer = 4\nhops = 2\nreadout = \"mlp\"\nhidden = 8\n",
      "kind = \"kernel_memory\"\nseq_len = 16\nd_in = 2\nmemories = 2\nbeta = [0.5, 1.5]\nreadout = \"linear\"\n",
      "kind = \"text_lm\"\nseq_len = 16\npath = \"" + text + "\"\n",
  };
  for (const std::string& t : tasks) {
    SCOPED_TRACE(t);
    const RunConfig c = config(t);
    auto one = make_task(c.task, 21), two = make_task(c.task, 21), other_seed = make_task(c.task, 22);
    const int64_t i1[3] = {4, 9, 2}, i2[2] = {9, 100};
    Batch a, b, v, o;
    one->fill(Split::train, i1, 3, a);
    two->fill(Split::train, i2, 2, b);  // sample 9 alone-ish, at another batch position
    two->fill(Split::val, i2, 2, v);
    other_seed->fill(Split::train, i2, 2, o);
    const int T = 16;
    auto sample = [&](const Batch& x, int s) {
      // Every field of sample s, flattened to doubles.
      std::vector<double> out;
      const size_t dx = x.x.size() / size_t(x.B), dy = x.y.size() / size_t(x.B);
      for (size_t i = 0; i < dx; ++i) out.push_back(x.x[size_t(s) * dx + i]);
      for (size_t i = 0; i < dy; ++i) out.push_back(x.y[size_t(s) * dy + i]);
      for (int i = 0; i < T; ++i) out.push_back(x.mask[size_t(s) * T + i]);
      if (!x.tokens.empty())
        for (int i = 0; i < T; ++i) {
          out.push_back(x.tokens[size_t(s) * T + i]);
          out.push_back(x.targets[size_t(s) * T + i]);
        }
      return out;
    };
    EXPECT_EQ(sample(a, 1), sample(b, 0)) << "the same (seed, split, index) gives the same sample";
    EXPECT_NE(sample(a, 1), sample(v, 0)) << "train and val differ";
    EXPECT_NE(sample(a, 1), sample(a, 0)) << "indices differ";
    EXPECT_NE(sample(b, 0), sample(o, 0)) << "seeds differ";
  }
}
