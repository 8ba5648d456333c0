// Paper 1's tasks against their definitions (ngram_noise, retrieval), the SVD wrapper, and the
// attention probes against a direct evaluation of their formulas.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "core/error.h"
#include "core/rng.h"
#include "io/config.h"
#include "kernels/svd.h"
#include "memory_tasks_util.h"
#include "models/transformer.h"
#include "tasks/task.h"

using namespace attnlab;
using namespace memtask_test;

// y_t = A [x_t, x_{t-1}, ..., x_{t-n+1}] with the documented A (stream "sparse_memory/A",
// std 1/sqrt(n d)); the loss counts t >= n - 1. Same samples as sparse_memory, lags 0..n-1.
TEST(P1Tasks, NgramNoiseIsTheLinearFormulaOfItsWindow) {
  const int T = 12, n = 4, d = 3;
  const RunConfig c = config("kind = \"ngram_noise\"\nseq_len = 12\nn_gram = 4\nd_in = 3\nd_out = 2\nreadout = \"linear\"\n");
  const RunConfig sm = config("kind = \"sparse_memory\"\nseq_len = 12\nlags = [0, 1, 2, 3]\nd_in = 3\nd_out = 2\nreadout = \"linear\"\n");
  const uint64_t seed = 17;
  auto task = make_task(c.task, seed), same = make_task(sm.task, seed);
  const auto A = normal_matrix(seed, "sparse_memory/A", size_t(2 * n * d), 1.0 / std::sqrt(double(n * d)));
  const auto idx = iota(40, 5);
  Batch b, s;
  task->fill(Split::val, idx.data(), 5, b);
  same->fill(Split::val, idx.data(), 5, s);
  EXPECT_EQ(b.x, s.x);
  EXPECT_EQ(b.y, s.y);
  EXPECT_EQ(b.mask, s.mask);
  for (int q = 0; q < 5; ++q)
    for (int t = 0; t < T; ++t) {
      EXPECT_EQ(b.mask[size_t(q) * T + t], t >= n - 1 ? 1.f : 0.f);
      if (t < n - 1) continue;
      for (int o = 0; o < 2; ++o) {
        double want = 0;
        for (int m = 0; m < n; ++m)
          for (int k = 0; k < d; ++k)
            want += A[size_t(o) * n * d + size_t(m) * d + k] * b.x[(size_t(q) * T + (t - m)) * d + k];
        EXPECT_TRUE(near_rel(b.y[(size_t(q) * T + t) * 2 + o], want)) << "sample " << q << " t " << t;
      }
    }
  // Its resolved config holds its own keys only.
  const std::string toml = resolved_toml(c);
  EXPECT_NE(toml.find("n_gram = 4"), std::string::npos) << toml;
  EXPECT_EQ(toml.find("lags"), std::string::npos) << toml;
  EXPECT_EQ(parse_run_config(toml, "resolved.toml", {}).task.n_gram, 4);
}

TEST(P1Tasks, NgramNoiseConfigErrors) {
  auto error_of = [](const std::string& task) {
    try { config(task); } catch (const UserError& e) { return std::string(e.what()); }
    return std::string("(no error)");
  };
  EXPECT_EQ(error_of("kind = \"ngram_noise\"\nseq_len = 8\nn_gram = 9\n"),
            "memtasks.toml: task.n_gram: 9 must be <= task.seq_len (8)");
  EXPECT_NE(error_of("kind = \"ngram_noise\"\nreadout = \"parity\"\n").find("task.readout"), std::string::npos);
  EXPECT_NE(error_of("kind = \"ngram_noise\"\nlags = [1, 2]\n").find("task.lags: not a key of task.kind = \"ngram_noise\" but of sparse_memory"), std::string::npos);
}

// T - 1 pairs [k_i, v_i, 0] and a query [k_j, 0, 1]; the target is v_j at the last position.
TEST(P1Tasks, RetrievalTargetIsTheQueriedKeysValue) {
  const int T = 9, K = 4, V = 2, W = K + V + 1;
  const RunConfig c = config("kind = \"retrieval\"\nseq_len = 9\nd_in = 4\nd_out = 2\n");
  EXPECT_EQ(c.model.d_in, W);
  EXPECT_EQ(c.model.d_out, V);
  auto task = make_task(c.task, 3);
  ASSERT_TRUE(task->last_only());
  const int B = 400;
  const auto idx = iota(0, B);
  Batch b;
  task->fill(Split::train, idx.data(), B, b);
  ASSERT_EQ(b.y.size(), size_t(B) * V);
  ASSERT_EQ(b.mask.size(), size_t(B));
  std::set<int> queried;
  double key_norm2 = 0, value2 = 0;
  for (int s = 0; s < B; ++s) {
    const float* x = b.x.data() + size_t(s) * T * W;
    const float* q = x + size_t(T - 1) * W;
    EXPECT_EQ(q[K + V], 1.f);
    for (int c2 = 0; c2 < V; ++c2) EXPECT_EQ(q[K + c2], 0.f);
    int matches = 0, j = -1;
    for (int i = 0; i < T - 1; ++i) {
      EXPECT_EQ(x[size_t(i) * W + K + V], 0.f);
      bool same = true;
      for (int c2 = 0; c2 < K; ++c2) same = same && x[size_t(i) * W + c2] == q[c2];
      if (same) { ++matches; j = i; }
      for (int c2 = 0; c2 < K; ++c2) key_norm2 += double(x[size_t(i) * W + c2]) * x[size_t(i) * W + c2];
      for (int c2 = 0; c2 < V; ++c2) value2 += double(x[size_t(i) * W + K + c2]) * x[size_t(i) * W + K + c2];
    }
    ASSERT_EQ(matches, 1) << "sample " << s;
    queried.insert(j);
    for (int c2 = 0; c2 < V; ++c2) EXPECT_EQ(b.y[size_t(s) * V + c2], x[size_t(j) * W + K + c2]);
    EXPECT_EQ(b.mask[size_t(s)], 1.f);
  }
  EXPECT_EQ(queried.size(), size_t(T - 1)) << "every pair gets queried";
  const double pairs = double(B) * (T - 1);
  EXPECT_NEAR(key_norm2 / pairs, 1.0, 0.05) << "keys ~ N(0, I/d): unit squared norm on average";
  EXPECT_NEAR(value2 / (pairs * V), 1.0, 0.05) << "values ~ N(0, I)";
  // A pure function of (seed, split, index).
  Batch one, val;
  const int64_t i7 = 7;
  task->fill(Split::train, &i7, 1, one);
  task->fill(Split::val, &i7, 1, val);
  EXPECT_TRUE(std::equal(one.x.begin(), one.x.end(), b.x.begin() + size_t(7) * T * W));
  EXPECT_NE(one.x, val.x);
  // Pair i of sample 7 is the normals at (7 (T - 1) + i) (K + V) + c of the split's stream, keys
  // scaled by 1 / sqrt(K): the definition, one rng_normal at a time.
  const uint64_t stream = stream_id("retrieval/train");
  for (int i = 0; i < T - 1; ++i)
    for (int c2 = 0; c2 < K + V; ++c2) {
      const double z = rng_normal(3, stream, (uint64_t(7) * (T - 1) + i) * (K + V) + c2);
      ASSERT_EQ(one.x[size_t(i) * W + c2], float(c2 < K ? z / 2.0 : z)) << "pair " << i << " channel " << c2;
    }
  try {
    config("kind = \"retrieval\"\nseq_len = 1\n");
    ADD_FAILURE() << "seq_len = 1 accepted";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), "memtasks.toml: task.seq_len: retrieval needs at least one pair and the query (seq_len >= 2)");
  }
}

TEST(P1Tasks, SvdReconstructsAndOrdersSingularValues) {
  std::mt19937 g(4);
  std::normal_distribution<double> nd;
  for (auto [m, n] : {std::pair<int, int>{5, 3}, {3, 6}, {4, 4}}) {
    std::vector<double> a(size_t(m) * n);
    for (double& v : a) v = nd(g);
    const Svd r = svd(a, m, n);
    ASSERT_EQ(r.k, std::min(m, n));
    for (int i = 0; i + 1 < r.k; ++i) EXPECT_GE(r.s[size_t(i)], r.s[size_t(i + 1)]);
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double v = 0;
        for (int c = 0; c < r.k; ++c) v += r.u[size_t(i) * r.k + c] * r.s[size_t(c)] * r.vt[size_t(c) * n + j];
        EXPECT_NEAR(v, a[size_t(i) * n + j], 1e-12);
      }
  }
  EXPECT_DOUBLE_EQ(effective_rank({2.0, 2.0, 0.0}), 2.0);
  EXPECT_NEAR(effective_rank({3.0, 1.0}), std::exp(-(0.75 * std::log(0.75) + 0.25 * std::log(0.25))), 1e-12);
}

namespace {
ModelConfig probe_model(bool dp) {
  ModelConfig c;
  c.d_model = 6;
  c.layers = 1;
  c.heads = {2};
  c.head_dim = {{3, 3}};
  c.value_dim = {{3, 3}};
  c.ffn = {0};
  c.rpe = Rpe::lin;
  c.dot_product = dp;
  c.norm = Norm::none;
  c.pos = Pos::none;
  c.d_in = 2;
  c.d_out = 1;
  c.max_len = 5;
  return c;
}
}  // namespace

// The probes against the formula: logits s[t, s'] = (W_q h_t + b_q).(W_k h_s' + b_k)/sqrt(d)
// - p_h (t - s') with h = W_e x + b_e (one layer, no norm), entropies of their softmax rows,
// and the effective rank of W_q,h^T W_k,h from its singular values.
TEST(P1Tasks, HeadProbesMatchTheirFormulas) {
  const int B = 2, T = 5, C = 6, dk = 3;
  for (bool dp : {true, false}) {
    SCOPED_TRACE(dp ? "dot product" : "DP-free");
    const ModelConfig cfg = probe_model(dp);
    Transformer<double> m(cfg, B);
    m.init(9);
    std::mt19937 g(2);
    std::normal_distribution<double> nd;
    for (double& v : m.arena.data()) v += 0.3 * nd(g);
    std::vector<double> x(size_t(B) * T * 2);
    for (double& v : x) v = nd(g);
    m.forward(x.data(), nullptr, B, T);
    const auto probes = m.head_probes(B);
    ASSERT_EQ(probes.size(), 2u);
    auto P = [&](const std::string& name) { return m.arena.p(m.arena.find(name)); };
    std::vector<double> h(size_t(B) * T * C);
    for (int n = 0; n < B * T; ++n)
      for (int c = 0; c < C; ++c) {
        double v = P("embed.bias")[c];
        for (int i = 0; i < 2; ++i) v += P("embed.weight")[c * 2 + i] * x[size_t(n) * 2 + i];
        h[size_t(n) * C + c] = v;
      }
    for (int hd = 0; hd < 2; ++hd) {
      const double p = P("layers.0.attn.rpe")[hd];
      double mx = 0, sum = 0, cnt = 0, ent = 0, ratio = 0, rows = 0, rrows = 0;
      for (int b = 0; b < B; ++b)
        for (int t = 0; t < T; ++t) {
          std::vector<double> s;
          for (int j = 0; j <= t; ++j) {
            double v = -p * (t - j);
            if (dp) {
              double dot = 0;
              for (int c = 0; c < dk; ++c) {
                double q = P("layers.0.attn.q.bias")[hd * dk + c], k = P("layers.0.attn.k.bias")[hd * dk + c];
                for (int i = 0; i < C; ++i) {
                  q += P("layers.0.attn.q.weight")[(hd * dk + c) * C + i] * h[(size_t(b) * T + t) * C + i];
                  k += P("layers.0.attn.k.weight")[(hd * dk + c) * C + i] * h[(size_t(b) * T + j) * C + i];
                }
                dot += q * k;
              }
              v += dot / std::sqrt(double(dk));
            }
            s.push_back(v);
            mx = std::max(mx, std::abs(v));
            sum += std::abs(v);
            cnt += 1;
          }
          double z = 0, e = 0;
          for (double v : s) z += std::exp(v);
          for (double v : s) e -= std::exp(v) / z * (v - std::log(z));
          ent += e;
          rows += 1;
          if (t >= 1) { ratio += e / std::log(double(t + 1)); rrows += 1; }
        }
      const HeadProbe& pr = probes[size_t(hd)];
      EXPECT_EQ(pr.layer, 0);
      EXPECT_EQ(pr.head, hd);
      EXPECT_NEAR(pr.max_abs_logit, mx, 1e-10);
      EXPECT_NEAR(pr.mean_abs_logit, sum / cnt, 1e-10);
      EXPECT_NEAR(pr.entropy, ent / rows, 1e-10);
      EXPECT_NEAR(pr.entropy_ratio, ratio / rrows, 1e-10);
      if (!dp) {
        EXPECT_TRUE(std::isnan(pr.qk_eff_rank));
        continue;
      }
      std::vector<double> M(size_t(C) * C, 0.0);
      for (int c = 0; c < dk; ++c)
        for (int i = 0; i < C; ++i)
          for (int j = 0; j < C; ++j)
            M[size_t(i) * C + j] += P("layers.0.attn.q.weight")[(hd * dk + c) * C + i] * P("layers.0.attn.k.weight")[(hd * dk + c) * C + j];
      const auto sv = svd(M, C, C).s;
      EXPECT_LT(sv[3], 1e-10 * sv[0]) << "rank <= head_dim";
      EXPECT_NEAR(pr.qk_eff_rank, effective_rank(sv), 1e-9);
      EXPECT_GT(pr.qk_eff_rank, 1.0);
      EXPECT_LE(pr.qk_eff_rank, 3.0 + 1e-9);
    }
  }
}
