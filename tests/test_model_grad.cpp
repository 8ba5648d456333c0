// Whole-model finite-difference checks in double precision across the variants:
// dot product on/off x rpe none/lin/log/t5 x FFN on/off x norm kinds x heterogeneous layers.
#include "fd_check.h"
#include "kernels/loss.h"
#include "models/transformer.h"

using namespace attnlab;
using attnlab::test::expect_grad_close;
using attnlab::test::randn;

namespace {

ModelConfig small_config(bool dp, Rpe rpe, bool ffn, Norm norm, bool hetero, Pos pos, int vocab = 0) {
  ModelConfig c;
  c.d_model = 8;
  c.layers = 2;
  c.heads = hetero ? std::vector<int>{3, 1} : std::vector<int>{2, 2};
  // hetero: heads of different sizes within a layer, in three groups (2 | 5 | 2) of the kernels
  c.head_dim = hetero ? std::vector<std::vector<int>>{{2, 5, 2}, {5}} : per_head(c.heads, {4, 4});
  c.value_dim = hetero ? std::vector<std::vector<int>>{{3, 3, 1}, {4}} : per_head(c.heads, {4, 4});
  c.ffn = ffn ? (hetero ? std::vector<int>{6, 0} : std::vector<int>{6, 6}) : std::vector<int>{0, 0};
  c.rpe = rpe;
  c.rpe_buckets = 4;
  c.rpe_max_distance = 6;
  c.dot_product = dp;
  c.norm = norm;
  c.pos = pos;
  c.ffn_activation = Act::tanh;
  c.d_in = 3;
  c.d_out = 2;
  c.vocab = vocab;
  c.max_len = 7;
  return c;
}

// Checks every parameter tensor of the model (entries sampled) against central differences.
void check_model(const ModelConfig& cfg, const std::string& tag) {
  const int B = 2, T = 7;
  Transformer<double> m(cfg, B);
  m.init(3);
  // Move every parameter off its initial value so that norms, biases and tables are generic.
  auto noise = randn(m.arena.size(), 77, 0.3);
  for (size_t i = 0; i < noise.size(); ++i) m.arena.data()[i] += noise[i];
  auto x = randn(size_t(B) * T * cfg.d_in, 5);
  std::vector<int> tok(size_t(B) * T);
  for (size_t i = 0; i < tok.size(); ++i) tok[i] = int((i * 7 + 3) % std::max(cfg.vocab, 1));
  auto y = randn(size_t(B) * T * cfg.d_out, 6);
  std::vector<double> mask(size_t(B) * T, 1.0);
  mask[0] = 0;
  mask[T + 2] = 0;
  const int V = m.out_dim();
  std::vector<double> dy(size_t(B) * T * V);
  auto loss = [&](double* grad) {
    const double* out = m.forward(x.data(), tok.data(), B, T);
    return cfg.vocab > 0 ? ce_forward_backward(grad, out, tok.data(), mask.data(), B * T, V)
                         : mse_forward_backward(grad, out, y.data(), mask.data(), B * T, V);
  };
  m.arena.zero_grad();
  loss(dy.data());
  m.backward(dy.data());
  std::vector<double> grad(m.arena.grad().begin(), m.arena.grad().end());
  for (const auto& p : m.arena.params()) {
    std::vector<double> view(m.arena.data().begin() + p.offset, m.arena.data().begin() + p.offset + p.size);
    std::vector<double> g(grad.begin() + p.offset, grad.begin() + p.offset + p.size);
    auto f = [&] {
      std::copy(view.begin(), view.end(), m.arena.data().begin() + p.offset);
      return loss(nullptr);
    };
    expect_grad_close(tag + " " + p.name, view, g, f, 1e-5, 24);
    std::copy(view.begin(), view.end(), m.arena.data().begin() + p.offset);
  }
}

}  // namespace

TEST(ModelGrad, DotProductAndRpeVariants) {
  for (bool dp : {true, false})
    for (Rpe rpe : {Rpe::none, Rpe::lin, Rpe::log, Rpe::t5})
      check_model(small_config(dp, rpe, true, Norm::layer, false, Pos::learned),
                  std::string(dp ? "dp" : "nodp") + "/rpe" + std::to_string(int(rpe)));
}

TEST(ModelGrad, NormAndFfnVariants) {
  for (Norm n : {Norm::none, Norm::layer, Norm::rms})
    for (bool ffn : {false, true})
      check_model(small_config(true, Rpe::lin, ffn, n, false, Pos::sinusoidal),
                  "norm" + std::to_string(int(n)) + (ffn ? "/ffn" : "/noffn"));
}

TEST(ModelGrad, HeterogeneousLayers) {
  for (Rpe rpe : {Rpe::none, Rpe::log, Rpe::t5})
    check_model(small_config(true, rpe, true, Norm::rms, true, Pos::none), "hetero/rpe" + std::to_string(int(rpe)));
  auto c = small_config(false, Rpe::lin, true, Norm::layer, true, Pos::learned);
  c.rpe_learnable = false;
  check_model(c, "hetero/nodp/alibi-fixed");
}

// Bounded logits (model.logit_cap): every score c tanh(s / c), with and without the dot product
// (then the position bias alone is capped), on heads of different sizes. A small cap bends
// every score, so the slope 1 - tanh^2 is far from 1 and a wrong backward shows.
TEST(ModelGrad, LogitCap) {
  for (bool dp : {true, false})
    for (Rpe rpe : {Rpe::none, Rpe::log, Rpe::t5}) {
      if (!dp && rpe == Rpe::none) continue;  // no score to cap
      auto c = small_config(dp, rpe, true, Norm::layer, true, Pos::learned);
      c.logit_cap = 0.6;
      c.score_scale = 2.0;  // logits of order 1: tanh is in its curved part
      check_model(c, std::string("cap/") + (dp ? "dp" : "nodp") + "/rpe" + std::to_string(int(rpe)));
    }
}

TEST(ModelGrad, TokenInputsCrossEntropy) {
  check_model(small_config(true, Rpe::t5, true, Norm::layer, true, Pos::learned, 11), "tokens");
}

TEST(Model, ParameterCountsAndBudget) {
  auto c = small_config(true, Rpe::log, true, Norm::layer, true, Pos::learned);
  Transformer<float> m(c, 1);
  const auto pc = m.counts();
  EXPECT_EQ(pc.attention_budget, (2 + 5 + 2) + 5);  // the sum of every head's d_k
  EXPECT_EQ(pc.total, int64_t(m.arena.size()));
  // layer 0 (d_k 2, 5, 2; d_v 3, 3, 1): q,k: 2*(9*8+9), v: 7*8+7, o: 8*7+8, rpe 3;
  // layer 1: q,k: 2*(5*8+5), v: 4*8+4, o: 8*4+8, rpe 1
  EXPECT_EQ(pc.attention, 2 * 81 + 63 + 64 + 3 + 2 * 45 + 36 + 40 + 1);
}

TEST(Model, CausalOutputsIgnoreTheFuture) {
  auto c = small_config(true, Rpe::t5, true, Norm::layer, true, Pos::learned);
  Transformer<double> m(c, 1);
  m.init(5);
  auto x = randn(size_t(7) * 3, 8);
  std::vector<double> a(m.forward(x.data(), nullptr, 1, 7), m.forward(x.data(), nullptr, 1, 7) + 7 * 2);
  x[6 * 3 + 1] += 1.0;  // change the last token only
  const double* b = m.forward(x.data(), nullptr, 1, 7);
  for (int i = 0; i < 6 * 2; ++i) EXPECT_DOUBLE_EQ(a[i], b[i]);
  EXPECT_NE(a[12], b[12]);
}
