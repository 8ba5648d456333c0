// Last-position mode of the Transformer (set_last_position_only): the last layer computes its
// attention (in the input space, kernels/attention_last.h), FFN, norms and head for the last
// position only. It must give the outputs and gradients of the full computation whose loss
// reads the last position, across heads of different sizes, each positional bias, the dot
// product on and off, FFN and norm kinds, tokens, and one or more layers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "fd_check.h"
#include "kernels/loss.h"
#include "memory_tasks_util.h"
#include "models/transformer.h"
#include "train/evaluate.h"

using namespace attnlab;
using attnlab::test::randn;

namespace {

struct Variant {
  std::string tag;
  int layers = 2;
  std::vector<int> heads, head_dim, value_dim, ffn;  // one size per layer, or:
  std::vector<std::vector<int>> head_dims, value_dims;  // one per head
  Rpe rpe = Rpe::none;
  bool dp = true;
  Norm norm = Norm::layer;
  Pos pos = Pos::learned;
  int vocab = 0;
  double cap = 0;  // model.logit_cap
};

ModelConfig config_of(const Variant& v) {
  ModelConfig c;
  c.d_model = 8;
  c.layers = v.layers;
  c.heads = v.heads;
  c.head_dim = v.head_dims.empty() ? per_head(v.heads, v.head_dim) : v.head_dims;
  c.value_dim = v.value_dims.empty() ? per_head(v.heads, v.value_dim) : v.value_dims;
  c.ffn = v.ffn;
  c.rpe = v.rpe;
  c.rpe_learnable = true;
  c.rpe_buckets = 4;
  c.rpe_max_distance = 6;
  c.dot_product = v.dp;
  c.norm = v.norm;
  c.pos = v.pos;
  c.ffn_activation = Act::gelu;
  c.d_in = 3;
  c.d_out = 2;
  c.vocab = v.vocab;
  c.max_len = 11;
  c.logit_cap = v.cap;
  c.score_scale = v.cap > 0 ? 2.0 : 0.0;  // logits of order 1: the cap bends them
  return c;
}

// |a - b| <= tol * max(|a|_inf, |b|_inf, floor) over a tensor.
void expect_close(const std::string& what, const double* a, const double* b, size_t n, double tol, double floor = 1e-12) {
  double scale = floor, worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < n; ++i) scale = std::max({scale, std::abs(a[i]), std::abs(b[i])});
  for (size_t i = 0; i < n; ++i)
    if (std::abs(a[i] - b[i]) > worst) worst = std::abs(a[i] - b[i]), at = i;
  EXPECT_LE(worst, tol * scale) << what << ": entry " << at << " full " << a[at] << " last-position " << b[at];
}

// The key bias's gradient is zero in exact arithmetic (a softmax row's score gradients sum to
// 0): both modes leave only rounding there, compared on the scale of the model's gradients.
template <class T>
double zero_grad_floor(const Transformer<T>& m, const std::string& name) {
  const std::string k_bias = ".attn.k.bias";
  if (name.size() < k_bias.size() || name.compare(name.size() - k_bias.size(), k_bias.size(), k_bias) != 0) return 1e-12;
  double mx = 0;
  for (const T g : m.arena.grad()) mx = std::max(mx, std::abs(double(g)));
  return mx;
}

void check_variant(const Variant& v) {
  const int B = 3, T = 11;
  const ModelConfig cfg = config_of(v);
  Transformer<double> full(cfg, B), last(cfg, B);
  full.init(5);
  auto noise = randn(full.arena.size(), 17, 0.3);  // off the initial values: generic norms, biases, tables
  for (size_t i = 0; i < noise.size(); ++i) full.arena.data()[i] += noise[i];
  std::copy(full.arena.data().begin(), full.arena.data().end(), last.arena.data().begin());
  ASSERT_TRUE(last.set_last_position_only(true));
  const auto x = randn(size_t(B) * T * cfg.d_in, 6);
  std::vector<int> tok(size_t(B) * T);
  for (size_t i = 0; i < tok.size(); ++i) tok[i] = int((i * 5 + 1) % std::max(cfg.vocab, 1));
  const int D = full.out_dim();
  const auto dy = randn(size_t(B) * D, 8);  // the loss's gradient at the last positions

  const double* of = full.forward(x.data(), tok.data(), B, T);
  const double* ol = last.forward(x.data(), tok.data(), B, T);
  std::vector<double> out_full(size_t(B) * D), dy_full(size_t(B) * T * D, 0.0);
  for (int b = 0; b < B; ++b) {
    std::copy_n(of + (size_t(b) * T + T - 1) * D, D, out_full.data() + size_t(b) * D);
    std::copy_n(dy.data() + size_t(b) * D, D, dy_full.data() + (size_t(b) * T + T - 1) * D);
  }
  expect_close(v.tag + " outputs", out_full.data(), ol, out_full.size(), 1e-10);
  full.arena.zero_grad();
  last.arena.zero_grad();
  full.backward(dy_full.data());
  last.backward(dy.data());
  for (const auto& p : full.arena.params())
    expect_close(v.tag + " d" + p.name, full.arena.grad().data() + p.offset, last.arena.grad().data() + p.offset, p.size, 1e-9,
                 zero_grad_floor(full, p.name));
  // The attention probes read every row of every layer: the same in both modes.
  const auto pf = full.head_probes(B), pl = last.head_probes(B);
  ASSERT_EQ(pf.size(), pl.size());
  for (size_t i = 0; i < pf.size(); ++i) {
    EXPECT_NEAR(pf[i].entropy_ratio, pl[i].entropy_ratio, 1e-9) << v.tag << " probe " << i;
    EXPECT_NEAR(pf[i].max_abs_logit, pl[i].max_abs_logit, 1e-9 * (1 + pf[i].max_abs_logit)) << v.tag << " probe " << i;
  }
  // Switched off again, the model computes every position.
  last.set_last_position_only(false);
  const double* again = last.forward(x.data(), tok.data(), B, T);
  std::vector<double> all(of, of + size_t(B) * T * D);
  expect_close(v.tag + " full again", all.data(), again, all.size(), 1e-12);
}

}  // namespace

TEST(LastPosition, EveryPositionalBiasWithAndWithoutTheDotProduct) {
  for (bool dp : {true, false})
    for (Rpe rpe : {Rpe::none, Rpe::lin, Rpe::log, Rpe::t5}) {
      Variant v;
      v.tag = std::string(dp ? "dp" : "nodp") + "/rpe" + std::to_string(int(rpe));
      v.heads = {2, 3};
      v.head_dim = {4, 2};
      v.value_dim = {4, 5};
      v.ffn = {6, 6};
      v.rpe = rpe;
      v.dp = dp;
      check_variant(v);
    }
}

TEST(LastPosition, HeadsOfDifferentSizesNormsFfnTokensAndDepth) {
  Variant one;  // paper 1's E2 shape: one layer, no FFN, no norm, no positions
  one.tag = "one layer";
  one.layers = 1;
  one.heads = {1};
  one.head_dim = one.value_dim = {16};
  one.ffn = {0};
  one.norm = Norm::none;
  one.pos = Pos::none;
  check_variant(one);
  Variant hetero;
  hetero.tag = "hetero rms";
  hetero.layers = 3;
  hetero.heads = {4, 1, 3};
  hetero.head_dim = {2, 7, 3};
  hetero.value_dim = {3, 2, 6};
  hetero.ffn = {5, 0, 9};
  hetero.norm = Norm::rms;
  hetero.pos = Pos::sinusoidal;
  hetero.rpe = Rpe::t5;
  check_variant(hetero);
  Variant tokens = hetero;
  tokens.tag = "tokens";
  tokens.vocab = 7;
  tokens.ffn = {5, 0, 0};
  tokens.norm = Norm::layer;
  tokens.rpe = Rpe::lin;
  check_variant(tokens);
  Variant mixed = hetero;  // heads of different sizes within a layer: the last layer runs 3 groups
  mixed.tag = "mixed sizes";
  mixed.head_dims = {{2, 2, 5, 1}, {7}, {3, 1, 3}};
  mixed.value_dims = {{3, 3, 3, 2}, {2}, {6, 6, 1}};
  check_variant(mixed);
  for (bool dp : {true, false}) {  // bounded logits: the key bias then gets a gradient in last-position mode
    Variant capped = mixed;
    capped.tag = std::string("logit cap ") + (dp ? "dp" : "nodp");
    capped.cap = 0.7;
    capped.dp = dp;
    check_variant(capped);
  }
}

// Through the loss runner (what training and evaluation call): on a per-sequence task the
// Transformer runs in last-position mode, with the loss and gradients of the full model.
TEST(LastPosition, TheLossRunnerUsesItOnPerSequenceTasksInSinglePrecision) {
  RunConfig c = memtask_test::config("kind = \"retrieval\"\nseq_len = 33\nd_in = 4\nd_out = 2\n");
  auto task = make_task(c.task, 3);
  ModelConfig m = c.model;
  m.d_model = 16;
  m.layers = 2;
  m.heads = {2, 3};
  m.head_dim = per_head(m.heads, {8, 4});
  m.value_dim = per_head(m.heads, {8, 4});
  m.ffn = {32, 32};
  m.rpe = Rpe::log;
  m.max_len = 33;
  const int B = 8;
  Transformer<float> runner_model(m, B), full(m, B);
  runner_model.init(2);
  full.init(2);
  std::vector<int64_t> idx(B);
  for (int i = 0; i < B; ++i) idx[size_t(i)] = i;
  Batch b;
  task->fill(Split::train, idx.data(), B, b);
  LossRunner r(runner_model, *task, "mse");
  const double loss = r.run(b, true);
  // The full computation by hand: every position, the loss at the last.
  const float* out = full.forward(b.x.data(), nullptr, B, 33);
  const int D = 2;
  std::vector<float> last(size_t(B) * D), dy(size_t(B) * D), dy_full(size_t(B) * 33 * D, 0.f);
  for (int i = 0; i < B; ++i) std::copy_n(out + (size_t(i) * 33 + 32) * D, D, last.data() + size_t(i) * D);
  const double expect = mse_forward_backward(dy.data(), last.data(), b.y.data(), b.mask.data(), B, D);
  for (int i = 0; i < B; ++i) std::copy_n(dy.data() + size_t(i) * D, D, dy_full.data() + (size_t(i) * 33 + 32) * D);
  full.arena.zero_grad();
  full.backward(dy_full.data());
  EXPECT_NEAR(loss, expect, 1e-6 * expect);
  for (const auto& p : full.arena.params()) {
    std::vector<double> a(full.arena.grad().begin() + p.offset, full.arena.grad().begin() + p.offset + p.size);
    std::vector<double> g(runner_model.arena.grad().begin() + p.offset, runner_model.arena.grad().begin() + p.offset + p.size);
    expect_close("float " + p.name, a.data(), g.data(), a.size(), 2e-5, zero_grad_floor(full, p.name));
  }
}
