// Finite-difference checks (double precision) of every kernel's backward against its forward.
// Each loss is <out, R> for a fixed random R, so the analytic gradient is backward(R).
#include <numeric>

#include "fd_check.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/linear.h"
#include "kernels/loss.h"
#include "kernels/norm.h"
#include "kernels/posbias.h"

using namespace attnlab;
using attnlab::test::expect_grad_close;
using attnlab::test::randn;

static double dot(const std::vector<double>& a, const std::vector<double>& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
}

TEST(KernelGrad, Linear) {
  const int N = 5, in = 7, out = 3;
  auto x = randn(N * in, 1), W = randn(out * in, 2), b = randn(out, 3), R = randn(N * out, 4);
  std::vector<double> y(N * out);
  auto loss = [&] { linear_forward(y.data(), x.data(), W.data(), b.data(), N, in, out); return dot(y, R); };
  std::vector<double> dx(x.size()), dW(W.size()), db(b.size());
  linear_backward(dx.data(), dW.data(), db.data(), R.data(), x.data(), W.data(), N, in, out);
  expect_grad_close("linear dx", x, dx, loss);
  expect_grad_close("linear dW", W, dW, loss);
  expect_grad_close("linear db", b, db, loss);
}

TEST(KernelGrad, LayerNorm) {
  const int N = 4, C = 9;
  auto x = randn(N * C, 5, 2.0), w = randn(C, 6), b = randn(C, 7), R = randn(N * C, 8);
  std::vector<double> y(N * C), mean(N), rstd(N);
  auto loss = [&] { layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C); return dot(y, R); };
  loss();
  std::vector<double> dx(x.size()), dw(C), db(C);
  layernorm_backward(dx.data(), dw.data(), db.data(), R.data(), x.data(), w.data(), mean.data(), rstd.data(), N, C);
  expect_grad_close("layernorm dx", x, dx, loss);
  expect_grad_close("layernorm dw", w, dw, loss);
  expect_grad_close("layernorm db", b, db, loss);
}

TEST(KernelGrad, RmsNorm) {
  const int N = 4, C = 9;
  auto x = randn(N * C, 9, 2.0), w = randn(C, 10), R = randn(N * C, 11);
  std::vector<double> y(N * C), rstd(N);
  auto loss = [&] { rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), N, C); return dot(y, R); };
  loss();
  std::vector<double> dx(x.size()), dw(C);
  rmsnorm_backward(dx.data(), dw.data(), R.data(), x.data(), w.data(), rstd.data(), N, C);
  expect_grad_close("rmsnorm dx", x, dx, loss);
  expect_grad_close("rmsnorm dw", w, dw, loss);
}

TEST(KernelGrad, Activations) {
  for (Act a : {Act::gelu, Act::relu, Act::tanh}) {
    auto x = randn(50, 12, 2.0), R = randn(50, 13);
    std::vector<double> y(50);
    auto loss = [&] { act_forward(a, y.data(), x.data(), 50); return dot(y, R); };
    std::vector<double> dx(50);
    act_backward(a, dx.data(), R.data(), x.data(), 50);
    expect_grad_close("activation " + std::to_string(int(a)), x, dx, loss);
  }
}

TEST(KernelForward, GeluMatchesFormula) {
  std::vector<double> x = {-2.0, -0.5, 0.0, 0.7, 3.0}, y(5);
  act_forward(Act::gelu, y.data(), x.data(), 5);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(y[i], x[i] * 0.5 * std::erfc(-x[i] / std::sqrt(2.0)), 1e-14);
}

TEST(KernelGrad, MseAndCrossEntropy) {
  const int N = 6, D = 3, V = 5;
  auto yhat = randn(N * D, 14), y = randn(N * D, 15);
  std::vector<double> mask = {1, 0, 1, 1, 0, 1};
  std::vector<double> g(N * D);
  auto lmse = [&] { return mse_forward_backward<double>(nullptr, yhat.data(), y.data(), mask.data(), N, D); };
  mse_forward_backward(g.data(), yhat.data(), y.data(), mask.data(), N, D);
  expect_grad_close("mse", yhat, g, lmse);
  // The loss is exactly the masked mean.
  double ref = 0;
  for (int n = 0; n < N; ++n) for (int j = 0; j < D; ++j) ref += mask[n] * std::pow(yhat[n * D + j] - y[n * D + j], 2);
  EXPECT_NEAR(lmse(), ref / (4 * D), 1e-14);

  auto logits = randn(N * V, 16, 2.0);
  std::vector<int> tgt = {0, 4, 2, 1, 3, 3};
  std::vector<double> gl(N * V);
  auto lce = [&] { return ce_forward_backward<double>(nullptr, logits.data(), tgt.data(), mask.data(), N, V); };
  ce_forward_backward(gl.data(), logits.data(), tgt.data(), mask.data(), N, V);
  expect_grad_close("cross-entropy", logits, gl, lce);
}

TEST(KernelGrad, PositionalBiases) {
  const int H = 3, T = 40;
  for (Rpe kind : {Rpe::lin, Rpe::log, Rpe::t5}) {
    RpeSpec s{kind, true, 8, 20};
    auto p = randn(kind == Rpe::t5 ? H * 8 : H, 17);
    auto R = randn(H * T, 18);
    std::vector<double> table(H * T);
    auto loss = [&] { posbias_forward(table.data(), s, p.data(), H, T); return dot(table, R); };
    std::vector<double> dp(p.size());
    posbias_backward(dp.data(), s, R.data(), H, T);
    expect_grad_close("posbias " + std::to_string(int(kind)), p, dp, loss);
  }
}

TEST(KernelForward, PositionalBiasFormulas) {
  const int H = 2, T = 300;
  std::vector<double> p = {0.5, 2.0}, table(H * T);
  posbias_forward(table.data(), RpeSpec{Rpe::log, true, 32, 128}, p.data(), H, T);
  EXPECT_DOUBLE_EQ(table[1 * T + 9], -2.0 * std::log(10.0));
  posbias_forward(table.data(), RpeSpec{Rpe::lin, false, 32, 128}, p.data(), H, T);
  EXPECT_DOUBLE_EQ(table[0 * T + 3], -3.0 * std::pow(2.0, -4.0));  // ALiBi slope 2^(-8/2)
  // T5 buckets: exact below 16, log-spaced to 128, then clamped.
  EXPECT_EQ(t5_bucket(15, 32, 128), 15);
  EXPECT_EQ(t5_bucket(16, 32, 128), 16);
  EXPECT_EQ(t5_bucket(32, 32, 128), 16 + int(std::log(2.0) / std::log(8.0) * 16));
  EXPECT_EQ(t5_bucket(127, 32, 128), 31);
  EXPECT_EQ(t5_bucket(1000, 32, 128), 31);
}

// Attention: with and without the dot product and the bias, d_v != d_k, and a length that
// spans several tiles (online softmax across tiles, a partial last tile).
TEST(KernelGrad, Attention) {
  for (int Tn : {6, 2 * kAttnTile + 11})
    for (bool dp : {true, false})
      for (bool with_bias : {false, true}) {
        AttnDims d;
        d.B = 2; d.T = Tn; d.H = 3; d.dk = 4; d.dv = 5; d.scale = 0.37; d.dot_product = dp;
        const size_t nq = size_t(d.B) * d.T * d.H * d.dk, nv = size_t(d.B) * d.T * d.H * d.dv;
        auto q = randn(nq, 20), k = randn(nq, 21), v = randn(nv, 22), R = randn(nv, 23), bias = randn(d.H * d.T, 24);
        std::vector<double> o(nv), lse(size_t(d.B) * d.H * d.T), work;
        auto loss = [&] {
          attention_forward(o.data(), lse.data(), q.data(), k.data(), v.data(), with_bias ? bias.data() : nullptr, d, work);
          return dot(o, R);
        };
        loss();
        std::vector<double> dq(nq), dk(nq), dv(nv), db(bias.size());
        attention_backward(dq.data(), dk.data(), dv.data(), with_bias ? db.data() : nullptr, R.data(), o.data(), lse.data(),
                           q.data(), k.data(), v.data(), with_bias ? bias.data() : nullptr, d, work);
        const std::string tag = "T=" + std::to_string(Tn) + (dp ? " dp" : " nodp") + (with_bias ? "+bias" : "");
        if (dp) {
          expect_grad_close("attention dq " + tag, q, dq, loss, 1e-5, 120);
          expect_grad_close("attention dk " + tag, k, dk, loss, 1e-5, 120);
        }
        expect_grad_close("attention dv " + tag, v, dv, loss, 1e-5, 120);
        if (with_bias) expect_grad_close("attention dbias " + tag, bias, db, loss, 1e-5, 120);
      }
}

// The attention forward against a direct evaluation of the formula, including causality,
// at a length spanning several tiles.
TEST(KernelForward, AttentionMatchesFormula) {
  AttnDims d;
  d.B = 1; d.T = kAttnTile + 37; d.H = 2; d.dk = 3; d.dv = 2; d.scale = 0.5;
  const size_t nq = size_t(d.T) * d.H * d.dk, nv = size_t(d.T) * d.H * d.dv;
  auto q = randn(nq, 30), k = randn(nq, 31), v = randn(nv, 32), bias = randn(d.H * d.T, 33);
  std::vector<double> o(nv), lse(size_t(d.H) * d.T), work;
  attention_forward(o.data(), lse.data(), q.data(), k.data(), v.data(), bias.data(), d, work);
  for (int h = 0; h < d.H; ++h)
    for (int t = 0; t < d.T; ++t) {
      std::vector<double> w(t + 1);
      double z = 0;
      for (int s = 0; s <= t; ++s) {
        double sc = 0;
        for (int i = 0; i < d.dk; ++i) sc += q[t * d.H * d.dk + h * d.dk + i] * k[s * d.H * d.dk + h * d.dk + i];
        w[s] = std::exp(0.5 * sc + bias[h * d.T + t - s]);
        z += w[s];
      }
      EXPECT_NEAR(lse[h * d.T + t], std::log(z), 1e-12);
      for (int i = 0; i < d.dv; ++i) {
        double ref = 0;
        for (int s = 0; s <= t; ++s) ref += w[s] / z * v[s * d.H * d.dv + h * d.dv + i];
        EXPECT_NEAR(o[t * d.H * d.dv + h * d.dv + i], ref, 1e-12);
      }
    }
}
