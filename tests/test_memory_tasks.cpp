// The paper-2 memory tasks against slow, direct evaluations of their documented formulas,
// written here from the header comments (tasks/*.h) and core/rng.h, never through the
// tasks' own code paths:
//   sparse_memory   y_t = f(x_{t-T_1}, ..., x_{t-T_M}); sign inputs; parity / majority /
//                   deep_mlp readouts; linear and mlp unchanged by the readout refactor
//   adaptive_memory y_t = f(z_{t-k_t}) or f(z_{t-k_t}, z_{t-k_t-k'}), decoded from x_t
//   kernel_memory   y_t = f((x * rho_1)(t), ...), rho exp or poly, unit mass over s <= t
//   text_lm         (token, target) = (text[i], text[i+1]), 90/10 contiguous split, bad paths
// and that every task is a pure function of (seed, split, index).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
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
#include "tasks/task.h"

using namespace attnlab;
namespace fs = std::filesystem;

namespace {

using cli_test::Result;
using cli_test::expect_bad_input;
using cli_test::run;

// A run config from a [task] table (and overrides); the model and train sections keep their
// defaults, so the task's own validation runs as it does for `attnlab train`.
RunConfig config(const std::string& task_toml, const std::vector<std::string>& overrides = {}) {
  return parse_run_config("seed = 5\n[task]\n" + task_toml, "memtasks.toml", overrides);
}

std::vector<int64_t> iota(int64_t from, int n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[size_t(i)] = from + i;
  return v;
}

// A fixed random matrix as the header documents: entry i of stream `name` times `std`.
std::vector<double> normal_matrix(uint64_t seed, const std::string& name, size_t n, double std) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = double(float(std * rng_normal(seed, stream_id(name), i)));
  return v;
}

double sgn(double v) { return v > 0 ? 1.0 : v < 0 ? -1.0 : 0.0; }

// |got - want| <= 1e-5 relative (with a tiny absolute floor for targets near 0).
::testing::AssertionResult near_rel(double got, double want) {
  const double tol = 1e-5 * std::fabs(want) + 1e-7;
  if (std::fabs(got - want) <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << ", want " << want << " (diff " << got - want << ", tol " << tol << ")";
}

// ---- the attnlab binary (as tests/test_cli.cpp runs it) ----
fs::path scratch(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("attnlab_memtasks_" + std::to_string(::getpid())) / name;
  fs::create_directories(d);
  return d;
}

// ---- sparse_memory helpers ----
// z = [x_{t-T_1}, ..., x_{t-T_M}] of sample s, read from the batch's inputs.
std::vector<double> lagged(const Batch& b, int s, int t, int d_in, const std::vector<int>& lags) {
  std::vector<double> z;
  for (int lag : lags)
    for (int i = 0; i < d_in; ++i) z.push_back(b.x[(size_t(s) * b.T + t - lag) * d_in + i]);
  return z;
}

}  // namespace

// ======================= sparse_memory =======================

TEST(MemoryTasks, SparseSignInputsAreUniformPlusMinusOne) {
  const RunConfig c = config("kind = \"sparse_memory\"\nseq_len = 64\nd_in = 2\nlags = [1, 4, 7]\ninputs = \"sign\"\n");
  auto task = make_task(c.task, 11);
  for (Split sp : {Split::train, Split::val}) {
    const auto idx = iota(0, 200);
    Batch b;
    task->fill(sp, idx.data(), 200, b);
    ASSERT_EQ(b.x.size(), size_t(200) * 64 * 2);
    size_t plus = 0;
    for (float v : b.x) {
      ASSERT_TRUE(v == 1.f || v == -1.f) << v;
      plus += v == 1.f;
    }
    EXPECT_NEAR(double(plus) / double(b.x.size()), 0.5, 0.02);  // 25600 signs: std error 0.003
  }
}

TEST(MemoryTasks, SparseParityAndMajorityOfTheLaggedSigns) {
  const std::vector<int> lags = {1, 4, 7};
  for (const char* ro : {"parity", "majority"})
    for (int d_in : {1, 2}) {
      SCOPED_TRACE(std::string(ro) + " d_in " + std::to_string(d_in));
      const RunConfig c = config("kind = \"sparse_memory\"\nseq_len = 24\nlags = [1, 4, 7]\ninputs = \"sign\"\nd_out = 1\n",
                                 {"task.readout=" + std::string(ro), "task.d_in=" + std::to_string(d_in)});
      auto task = make_task(c.task, 3);
      ASSERT_EQ(task->d_in(), d_in);
      ASSERT_EQ(task->d_out(), 1);
      int ties = 0, plus = 0, counted = 0;
      for (Split sp : {Split::train, Split::val}) {
        const auto idx = iota(sp == Split::train ? 10 : 500, 16);
        Batch b;
        task->fill(sp, idx.data(), 16, b);
        ASSERT_EQ(b.y.size(), size_t(16) * 24);
        ASSERT_EQ(b.mask.size(), size_t(16) * 24);
        for (int s = 0; s < 16; ++s)
          for (int t = 0; t < 24; ++t) {
            const size_t at = size_t(s) * 24 + t;
            EXPECT_EQ(b.mask[at], t >= 7 ? 1.f : 0.f) << "t " << t;
            if (t < 7) continue;
            double prod = 1, sum = 0;
            for (double v : lagged(b, s, t, d_in, lags)) {
              prod *= sgn(v);
              sum += sgn(v);
            }
            const double want = std::string(ro) == "parity" ? prod : sgn(sum);
            EXPECT_EQ(b.y[at], float(want)) << "sample " << s << " t " << t;
            ties += want == 0;
            plus += want > 0;
            ++counted;
          }
      }
      // Both signs occur; majority of 6 signs ties (y = 0) sometimes, of 3 never.
      EXPECT_GT(plus, counted / 4);
      EXPECT_LT(plus, 3 * counted / 4);
      if (std::string(ro) == "majority" && d_in == 2) {
        EXPECT_GT(ties, 0);
      } else {
        EXPECT_EQ(ties, 0);
      }
    }
}

// The linear and mlp readouts keep the streams of the code before the readout refactor
// (commit 8c99a78^): the golden numbers were printed by that commit's SparseMemoryTask
// (seq_len 12, d_in 2, d_out 2, lags [1, 4, 7], hidden 6, seed 42, samples 3 and 77, targets
// at t = 7 and 11). Each target is also recomputed here from rng_normal: inputs from stream
// "sparse_memory/<split>" (index (i T + t) d_in + d), A ("sparse_memory/A", std 1/sqrt(n));
// W ("/W", 1/sqrt(n)), c ("/c", 0.1), a ("/a", 1/sqrt(hidden)).
TEST(MemoryTasks, SparseLinearAndMlpTargetsAreUnchanged) {
  const std::map<std::string, std::vector<double>> golden = {
      {"linear/0", {2.03170967, -0.930051625, -0.278664589, 0.845699191, 1.39508104, -0.650236249, 1.09818816, -0.616302609}},
      {"linear/1", {1.44603169, -0.375817984, -2.81471372, 1.39282036, 0.540752709, -0.0133913746, -0.353989094, 0.378157437}},
      {"mlp/0", {-0.994135499, 0.647229195, 0.458747238, -0.226777002, -1.22301543, 1.17767513, -1.67940819, 1.66052771}},
      {"mlp/1", {-0.547422588, 0.606015921, 0.416036665, -0.241761923, 0.653543055, -0.779282808, 1.02228558, -0.937562168}},
  };
  const int T = 12, D = 2, O = 2, H = 6, n = 3 * D;
  const uint64_t seed = 42;
  const std::vector<int> lags = {1, 4, 7};
  for (const char* ro : {"linear", "mlp"}) {
    const RunConfig c = config("kind = \"sparse_memory\"\nseq_len = 12\nd_in = 2\nd_out = 2\nlags = [1, 4, 7]\nhidden = 6\n",
                               {"task.readout=" + std::string(ro)});
    auto task = make_task(c.task, seed);
    const auto A = normal_matrix(seed, "sparse_memory/A", size_t(O) * n, 1 / std::sqrt(double(n)));
    const auto W = normal_matrix(seed, "sparse_memory/W", size_t(H) * n, 1 / std::sqrt(double(n)));
    const auto cb = normal_matrix(seed, "sparse_memory/c", H, 0.1);
    const auto a = normal_matrix(seed, "sparse_memory/a", size_t(O) * H, 1 / std::sqrt(double(H)));
    for (Split sp : {Split::train, Split::val}) {
      SCOPED_TRACE(std::string(ro) + " split " + std::to_string(int(sp)));
      const int64_t idx[2] = {3, 77};
      Batch b;
      task->fill(sp, idx, 2, b);
      const uint64_t stream = stream_id(sp == Split::train ? "sparse_memory/train" : "sparse_memory/val");
      for (int s = 0; s < 2; ++s)
        for (int i = 0; i < T * D; ++i)
          ASSERT_EQ(b.x[size_t(s) * T * D + i], float(rng_normal(seed, stream, uint64_t(idx[s]) * T * D + i)));
      const auto& g = golden.at(std::string(ro) + "/" + std::to_string(int(sp)));
      size_t gi = 0;
      for (int s = 0; s < 2; ++s)
        for (int t = 0; t < T; ++t) {
          if (t < 7) continue;
          const auto z = lagged(b, s, t, D, lags);
          for (int j = 0; j < O; ++j) {
            double want = 0;
            if (std::string(ro) == "linear") {
              for (int i = 0; i < n; ++i) want += A[size_t(j) * n + i] * z[size_t(i)];
            } else {
              for (int k = 0; k < H; ++k) {
                double pre = cb[size_t(k)];
                for (int i = 0; i < n; ++i) pre += W[size_t(k) * n + i] * z[size_t(i)];
                want += a[size_t(j) * H + k] * std::tanh(pre);
              }
            }
            const float got = b.y[(size_t(s) * T + t) * O + j];
            EXPECT_TRUE(near_rel(got, want)) << "sample " << s << " t " << t << " j " << j;
            if (t == 7 || t == 11) {
              EXPECT_NEAR(got, g[gi], 1e-6 * std::max(1.0, std::fabs(g[gi]))) << "golden, t " << t;
              ++gi;
            }
          }
        }
      EXPECT_EQ(gi, g.size());
    }
  }
}

// deep_mlp: y = a^T h3, h_l = tanh(W_l h_{l-1} + c_l), W_1 ~ N(0, 2.25/n), W_2, W_3 ~
// N(0, 2.25/hidden), c_l ~ N(0, 0.01), a ~ N(0, 1/hidden) (tasks/readout.h). The header does
// not name the streams of W_l, c_l, a; the names used here ("<prefix>/deep_W<l-1>",
// "/deep_c<l-1>", "/deep_a") are read from readout.cpp, the formula and scales from the doc.
TEST(MemoryTasks, SparseDeepMlpReadout) {
  const std::string base = "kind = \"sparse_memory\"\nseq_len = 16\nd_in = 2\nd_out = 2\nlags = [1, 4, 7]\nhidden = 8\n";
  const RunConfig deep = config(base, {"task.readout=deep_mlp"}), mlp = config(base, {"task.readout=mlp"});
  const auto idx = iota(0, 32);
  auto fill = [&](const RunConfig& c, uint64_t seed, Split sp) {
    Batch b;
    make_task(c.task, seed)->fill(sp, idx.data(), 32, b);
    return b;
  };
  const Batch d1 = fill(deep, 9, Split::train), d1again = fill(deep, 9, Split::train), m1 = fill(mlp, 9, Split::train),
              d2 = fill(deep, 10, Split::train);
  EXPECT_EQ(d1.y, d1again.y);  // deterministic in the seed
  EXPECT_EQ(d1.x, m1.x);       // the same inputs ...
  EXPECT_NE(d1.y, m1.y);       // ... but another function than mlp
  // Output variance clearly above 0 on the counted positions.
  double m = 0, v = 0, cnt = 0;
  for (size_t p = 0; p < d1.mask.size(); ++p)
    if (d1.mask[p] > 0)
      for (int j = 0; j < 2; ++j) { m += d1.y[p * 2 + j]; cnt += 1; }
  m /= cnt;
  for (size_t p = 0; p < d1.mask.size(); ++p)
    if (d1.mask[p] > 0)
      for (int j = 0; j < 2; ++j) v += (d1.y[p * 2 + j] - m) * (d1.y[p * 2 + j] - m);
  v /= cnt;
  EXPECT_GT(v, 0.05) << "deep_mlp output variance";
  // Each seed's targets are its documented function, recomputed here; two seeds give
  // different functions (compared on seed 10's inputs).
  const int D = 2, O = 2, Hd = 8, n = 3 * D;
  auto deep_f = [&](uint64_t seed, const std::vector<double>& z, int j) {
    std::vector<double> h = z;
    for (int l = 0; l < 3; ++l) {
      const int fan_in = l == 0 ? n : Hd;
      const auto W = normal_matrix(seed, "sparse_memory/deep_W" + std::to_string(l), size_t(Hd) * fan_in, 1.5 / std::sqrt(double(fan_in)));
      const auto cb = normal_matrix(seed, "sparse_memory/deep_c" + std::to_string(l), Hd, 0.1);
      std::vector<double> nx(static_cast<size_t>(Hd));
      for (int k = 0; k < Hd; ++k) {
        double s = cb[size_t(k)];
        for (int i = 0; i < fan_in; ++i) s += W[size_t(k) * fan_in + i] * h[size_t(i)];
        nx[size_t(k)] = std::tanh(s);
      }
      h = nx;
    }
    const auto a = normal_matrix(seed, "sparse_memory/deep_a", size_t(O) * Hd, 1 / std::sqrt(double(Hd)));
    double y = 0;
    for (int k = 0; k < Hd; ++k) y += a[size_t(j) * Hd + k] * h[size_t(k)];
    return y;
  };
  const std::vector<int> lags = {1, 4, 7};
  int differ = 0;
  for (uint64_t seed : {uint64_t(9), uint64_t(10)}) {
    const Batch& b = seed == 9 ? d1 : d2;
    for (int s = 0; s < 4; ++s)
      for (int t = 7; t < 16; ++t) {
        const auto z = lagged(b, s, t, D, lags);
        for (int j = 0; j < O; ++j) {
          EXPECT_TRUE(near_rel(b.y[(size_t(s) * 16 + t) * O + j], deep_f(seed, z, j))) << "seed " << seed << " s " << s << " t " << t;
          if (seed == 10) differ += std::fabs(deep_f(9, z, j) - deep_f(10, z, j)) > 1e-3;
        }
      }
  }
  EXPECT_GT(differ, 30) << "seeds 9 and 10 should give different deep_mlp functions";
  // The val split follows the same function.
  const Batch dv = fill(deep, 9, Split::val);
  EXPECT_NE(dv.x, d1.x);
  for (int t = 7; t < 16; ++t)
    EXPECT_TRUE(near_rel(dv.y[size_t(t) * O], deep_f(9, lagged(dv, 0, t, D, lags), 0)));
}

// positions = "last": one target per sequence, the target of the last position.
TEST(MemoryTasks, SparseLastPositionOnly) {
  const std::string base = "kind = \"sparse_memory\"\nseq_len = 16\nd_in = 2\nd_out = 2\nlags = [1, 4, 7]\nreadout = \"mlp\"\nhidden = 8\n";
  auto all = make_task(config(base).task, 6), last = make_task(config(base, {"task.positions=last"}).task, 6);
  EXPECT_FALSE(all->last_only());
  EXPECT_TRUE(last->last_only());
  const auto idx = iota(12, 5);
  for (Split sp : {Split::train, Split::val}) {
    Batch a, l;
    all->fill(sp, idx.data(), 5, a);
    last->fill(sp, idx.data(), 5, l);
    EXPECT_EQ(a.x, l.x);
    ASSERT_EQ(l.y.size(), size_t(5) * 2);
    ASSERT_EQ(l.mask.size(), size_t(5));
    for (int s = 0; s < 5; ++s) {
      EXPECT_EQ(l.mask[size_t(s)], 1.f);
      for (int j = 0; j < 2; ++j) EXPECT_EQ(l.y[size_t(s) * 2 + j], a.y[(size_t(s) * 16 + 15) * 2 + j]);
    }
  }
}

// ======================= adaptive_memory =======================

namespace {
struct Decoded {
  std::vector<std::vector<double>> z;  // [T][V]
  std::vector<int> k;                  // [T], 1..K
};

// Decodes sample s of an adaptive_memory batch: x_t = [z_t, onehot(k_t)].
Decoded decode(const Batch& b, int s, int V, int K) {
  const int D = V + K;
  Decoded d;
  for (int t = 0; t < b.T; ++t) {
    const float* x = b.x.data() + (size_t(s) * b.T + t) * D;
    d.z.emplace_back(x, x + V);
    int ones = 0, at = -1;
    for (int q = 0; q < K; ++q) {
      EXPECT_TRUE(x[V + q] == 0.f || x[V + q] == 1.f) << "pointer entry " << x[V + q];
      if (x[V + q] == 1.f) { ++ones; at = q; }
    }
    EXPECT_EQ(ones, 1) << "t " << t;
    d.k.push_back(at + 1);
  }
  return d;
}
}  // namespace

TEST(MemoryTasks, AdaptiveParityFollowsThePointers) {
  const int T = 20, K = 4;
  for (int hops : {1, 2})
    for (const char* ro : {"parity", "majority"}) {
      SCOPED_TRACE(std::string(ro) + " hops " + std::to_string(hops));
      const RunConfig c = config("kind = \"adaptive_memory\"\nseq_len = 20\nvalue_dim = 1\nmax_pointer = 4\ninputs = \"sign\"\nd_out = 1\n",
                                 {"task.hops=" + std::to_string(hops), "task.readout=" + std::string(ro)});
      auto task = make_task(c.task, 17);
      ASSERT_EQ(task->d_in(), 1 + K);
      ASSERT_EQ(c.model.d_in, 1 + K);
      int masked_in = 0, masked_out = 0;
      for (Split sp : {Split::train, Split::val}) {
        const auto idx = iota(sp == Split::train ? 0 : 1000, 16);
        Batch b;
        task->fill(sp, idx.data(), 16, b);
        for (int s = 0; s < 16; ++s) {
          const Decoded d = decode(b, s, 1, K);
          for (int t = 0; t < T; ++t) {
            ASSERT_TRUE(d.z[size_t(t)][0] == 1.0 || d.z[size_t(t)][0] == -1.0);
            const int p1 = t - d.k[size_t(t)];
            const int p2 = hops == 2 && p1 >= 0 ? p1 - d.k[size_t(p1)] : p1;
            const bool ok = p1 >= 0 && p2 >= 0;
            const size_t at = size_t(s) * T + t;
            EXPECT_EQ(b.mask[at], ok ? 1.f : 0.f) << "t " << t;
            (ok ? masked_in : masked_out)++;
            if (!ok) continue;
            std::vector<double> zs = {d.z[size_t(p1)][0]};
            if (hops == 2) zs.push_back(d.z[size_t(p2)][0]);
            double prod = 1, sum = 0;
            for (double v : zs) { prod *= sgn(v); sum += sgn(v); }
            EXPECT_EQ(b.y[at], float(std::string(ro) == "parity" ? prod : sgn(sum))) << "sample " << s << " t " << t;
          }
        }
      }
      EXPECT_GT(masked_in, 0);
      EXPECT_GT(masked_out, 0);
    }
}

// Linear readout with gaussian values: y_t = A [z_{p1}, z_{p2}], A rebuilt from the stream
// "adaptive_memory/A" with std 1/sqrt(hops * value_dim), as readout.h documents.
TEST(MemoryTasks, AdaptiveLinearFollowsThePointers) {
  const int T = 24, V = 3, K = 5, O = 2;
  const uint64_t seed = 23;
  for (int hops : {1, 2}) {
    SCOPED_TRACE("hops " + std::to_string(hops));
    const RunConfig c = config("kind = \"adaptive_memory\"\nseq_len = 24\nvalue_dim = 3\nmax_pointer = 5\nd_out = 2\nreadout = \"linear\"\n",
                               {"task.hops=" + std::to_string(hops)});
    auto task = make_task(c.task, seed);
    const int n = hops * V;
    const auto A = normal_matrix(seed, "adaptive_memory/A", size_t(O) * n, 1 / std::sqrt(double(n)));
    for (Split sp : {Split::train, Split::val}) {
      const auto idx = iota(sp == Split::train ? 40 : 7, 8);
      Batch b;
      task->fill(sp, idx.data(), 8, b);
      for (int s = 0; s < 8; ++s) {
        const Decoded d = decode(b, s, V, K);
        for (int t = 0; t < T; ++t) {
          const int p1 = t - d.k[size_t(t)];
          const int p2 = hops == 2 && p1 >= 0 ? p1 - d.k[size_t(p1)] : p1;
          const bool ok = p1 >= 0 && p2 >= 0;
          EXPECT_EQ(b.mask[size_t(s) * T + t], ok ? 1.f : 0.f);
          if (!ok) continue;
          std::vector<double> z = d.z[size_t(p1)];
          if (hops == 2) z.insert(z.end(), d.z[size_t(p2)].begin(), d.z[size_t(p2)].end());
          for (int j = 0; j < O; ++j) {
            double want = 0;
            for (int i = 0; i < n; ++i) want += A[size_t(j) * n + i] * z[size_t(i)];
            EXPECT_TRUE(near_rel(b.y[(size_t(s) * T + t) * O + j], want)) << "sample " << s << " t " << t << " j " << j;
          }
        }
      }
    }
  }
}

TEST(MemoryTasks, AdaptivePointersAreUniform) {
  const int T = 32, K = 6;
  const RunConfig c = config("kind = \"adaptive_memory\"\nseq_len = 32\nvalue_dim = 2\nmax_pointer = 6\nhops = 2\n");
  auto task = make_task(c.task, 1);
  for (Split sp : {Split::train, Split::val}) {
    const auto idx = iota(0, 128);
    Batch b;
    task->fill(sp, idx.data(), 128, b);
    std::vector<int> count(size_t(K) + 1, 0);
    for (int s = 0; s < 128; ++s)
      for (int k : decode(b, s, 2, K).k) {
        ASSERT_GE(k, 1);
        ASSERT_LE(k, K);
        ++count[size_t(k)];
      }
    const double expect = 128.0 * T / K;  // 683 each, std about 24
    for (int k = 1; k <= K; ++k) EXPECT_NEAR(count[size_t(k)], expect, 0.15 * expect) << "pointer " << k;
  }
}

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
  const size_t N = 2000, split = N * 9 / 10;  // 1800
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
      const size_t at = starts[0];
      if (sp == Split::train) {
        EXPECT_LT(at + T, split) << "a training window reaches into the validation text";
      } else {
        EXPECT_GE(at, split) << "a validation/test window starts in the training text";
      }
      lo_seen = std::min(lo_seen, at);
      hi_seen = std::max(hi_seen, at);
    }
    // The windows spread over their split.
    if (sp == Split::train) {
      EXPECT_LT(lo_seen, 100u);
      EXPECT_GT(hi_seen, split - T - 100);
    } else {
      EXPECT_LT(lo_seen, split + 30);
      EXPECT_GT(hi_seen, N - T - 30);
    }
  }
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
  // 300 bytes: the last 10% (30 bytes) cannot hold a window of seq_len + 1 = 33 bytes.
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
  // A 2000-byte file holds windows of 17 bytes in its last 200 bytes, not of 200.
  EXPECT_NE(error_of({"task.path=" + ok, "task.seq_len=199"}).find("task.path"), std::string::npos);
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
