// Paper-3 models: finite-difference gradients (double), the shallow model against its
// formula, f = 0 at symmetric initialization, and projection onto the per-head balls.
#include <algorithm>
#include <cmath>

#include "fd_check.h"
#include "train/error_probe.h"
#include "kernels/loss.h"
#include "models/model.h"
#include "train/projection.h"
#include "tasks/teacher_student.h"

using namespace attnlab;
using attnlab::test::expect_grad_close;
using attnlab::test::randn;

namespace {
ModelConfig p3_config(const std::string& kind, const std::string& act, int m = 6, int d = 3, int T = 5) {
  ModelConfig c;
  c.kind = kind;
  c.width = m;
  c.activation = act;
  c.d_in = d;
  c.max_len = T;
  c.u_init = "normal";
  return c;
}

void check_grads(const ModelConfig& cfg, const std::string& tag) {
  const int B = 4, T = cfg.max_len;
  auto m = make_model<double>(cfg, B);
  m->init(9);
  auto noise = randn(m->arena.size(), 31, 0.3);  // off the symmetric point, where f = 0
  for (size_t i = 0; i < noise.size(); ++i) m->arena.data()[i] += noise[i];
  auto x = randn(size_t(B) * T * cfg.d_in, 32, 0.8), y = randn(size_t(B), 33);
  std::vector<double> mask(static_cast<size_t>(B), 1.0), dy(static_cast<size_t>(B));
  auto loss = [&](double* g) { return mse_forward_backward(g, m->forward(x.data(), nullptr, B, T), y.data(), mask.data(), B, 1); };
  m->arena.zero_grad();
  loss(dy.data());
  m->backward(dy.data());
  std::vector<double> grad(m->arena.grad().begin(), m->arena.grad().end());
  for (const auto& p : m->arena.params()) {
    std::vector<double> view(m->arena.data().begin() + p.offset, m->arena.data().begin() + p.offset + p.size);
    std::vector<double> g(grad.begin() + p.offset, grad.begin() + p.offset + p.size);
    auto f = [&] { std::copy(view.begin(), view.end(), m->arena.data().begin() + p.offset); return loss(nullptr); };
    expect_grad_close(tag + " " + p.name, view, g, f, 1e-6, 200);
    std::copy(view.begin(), view.end(), m->arena.data().begin() + p.offset);
  }
}
}  // namespace

TEST(P3Grad, ShallowAttentionAndRnns) {
  for (const char* kind : {"shallow_attention", "indrnn", "rnn"})
    for (const char* act : {"tanh", "erf"}) check_grads(p3_config(kind, act), std::string(kind) + "/" + act);
  check_grads(p3_config("lstm", "tanh"), "lstm");
  auto c = p3_config("shallow_attention", "tanh");
  c.score_scale = 0.35;
  check_grads(c, "shallow/scaled");
}

// f(X) = (1/sqrt m) sum_i c_i tanh(U_i^T X softmax(X^T W_i x_T)), evaluated by hand.
TEST(ShallowAttention, MatchesItsFormula) {
  const int m = 4, d = 3, T = 6;
  auto c = p3_config("shallow_attention", "tanh", m, d, T);
  c.init = "iid";
  auto model = make_model<double>(c, 1);
  model->init(4);
  auto x = randn(size_t(T) * d, 5);
  const double f = model->forward(x.data(), nullptr, 1, T)[0];
  const double* W = model->arena.p(0);
  const double* U = model->arena.p(1);
  const double* cc = model->arena.p(2);
  double ref = 0;
  for (int i = 0; i < m; ++i) {
    std::vector<double> s(T), a(d, 0.0);
    double z = 0;
    for (int t = 0; t < T; ++t) {
      double v = 0;
      for (int j = 0; j < d; ++j)
        for (int k = 0; k < d; ++k) v += x[t * d + j] * W[(i * d + j) * d + k] * x[(T - 1) * d + k];
      s[t] = std::exp(v);
      z += s[t];
    }
    for (int t = 0; t < T; ++t)
      for (int j = 0; j < d; ++j) a[j] += s[t] / z * x[t * d + j];
    double u = 0;
    for (int j = 0; j < d; ++j) u += U[i * d + j] * a[j];
    ref += cc[i] * std::tanh(u);
  }
  EXPECT_NEAR(f, ref / std::sqrt(double(m)), 1e-12);
}

TEST(SymmetricInit, OutputIsZeroForRandomInputs) {
  for (const char* kind : {"shallow_attention", "indrnn", "rnn", "lstm"}) {
    auto c = p3_config(kind, "erf", 16, 4, 9);
    auto model = make_model<double>(c, 8);
    model->init(12);
    auto x = randn(8 * 9 * 4, 13, 2.0);
    const double* f = model->forward(x.data(), nullptr, 8, 9);
    for (int b = 0; b < 8; ++b) EXPECT_NEAR(f[b], 0.0, 1e-14) << kind;  // exact up to summation order
    c.init = "iid";
    auto other = make_model<double>(c, 8);
    other->init(12);
    EXPECT_NE(other->forward(x.data(), nullptr, 8, 9)[0], 0.0) << kind;
  }
}

TEST(Projection, EveryHeadStaysInItsBallAfterHugeSteps) {
  for (const char* kind : {"shallow_attention", "indrnn", "rnn", "lstm"}) {
    auto c = p3_config(kind, "tanh", 8, 3, 5);
    auto model = make_model<float>(c, 4);
    model->init(1);
    const std::vector<float> theta0(model->arena.data().begin(), model->arena.data().end());
    const std::vector<double> rho = {0.5, 1.0, 2.0};
    const auto slices = model->head_slices();
    ASSERT_EQ(slices.size(), size_t(3 * 8));
    for (int step = 0; step < 50; ++step) {
      auto g = randn(model->arena.size(), 100 + step, 1.0);
      for (size_t j = 0; j < g.size(); ++j) model->arena.data()[j] -= float(1e3 * g[j]);  // a huge step
      EXPECT_EQ(project_heads<float>(model->arena.data(), theta0, slices, rho, 8), slices.size()) << "every ball clipped";
    }
    int on_boundary = 0;
    for (const auto& s : slices) {
      double n2 = 0;
      for (auto [off, len] : s.ranges)
        for (size_t j = off; j < off + len; ++j) n2 += std::pow(double(model->arena.data()[j]) - theta0[j], 2);
      const double r = rho[size_t(s.group)] / std::sqrt(8.0);
      EXPECT_LE(std::sqrt(n2), r * (1 + 1e-5)) << kind << " head " << s.head << " group " << s.group;
      on_boundary += std::sqrt(n2) > r * 0.999;
    }
    EXPECT_EQ(on_boundary, int(slices.size()));  // huge steps push every head to its boundary
    // Inside every ball (just projected, then moved back a fifth of the way): nothing to clip.
    for (size_t j = 0; j < theta0.size(); ++j) model->arena.data()[j] = theta0[j] + 0.8f * (model->arena.data()[j] - theta0[j]);
    const std::vector<float> inside(model->arena.data().begin(), model->arena.data().end());
    EXPECT_EQ(project_heads<float>(model->arena.data(), theta0, slices, rho, 8), 0u);
    EXPECT_TRUE(std::equal(inside.begin(), inside.end(), model->arena.data().begin()));
  }
}

// The linearization error with the authors' Delta (one shift for the data set: dU_i, dW_i along
// the gradient of sum_b h_i, dc_i = +rho_c / sqrt m) is second order in the step: halving rho
// quarters it, for i.i.d. and symmetric heads alike (for twins, whose c are opposite and whose
// U, W shifts are equal, the c h terms cancel, and dc times the change of h remains).
TEST(ErrorDecomposition, LinearizationErrorOrder) {
  RunConfig cfg;
  cfg.task.kind = "teacher_student_ntk";
  cfg.task.d_in = 4;
  cfg.task.seq_len = 6;
  cfg.task.n_train = 10;
  cfg.task.n_val = 10;
  cfg.task.anchors = 4;
  cfg.task.teacher_samples = 64;
  cfg.model.kind = "shallow_attention";
  cfg.model.d_in = 4;
  cfg.model.max_len = 6;
  for (const char* init : {"symmetric", "iid"}) {
    cfg.model.init = init;
    cfg.train.rho = {0.02, 0.02, 0.02};
    const auto a = p3_error_decomposition(cfg, {16});
    cfg.train.rho = {0.01, 0.01, 0.01};
    const auto b = p3_error_decomposition(cfg, {16});
    ASSERT_GT(a[0].lin_mean, 0.0) << init;
    EXPECT_NEAR(a[0].lin_mean / b[0].lin_mean, 4.0, 0.1) << init;
    EXPECT_EQ(a[0].approx_mean, b[0].approx_mean) << init;  // does not depend on rho
    EXPECT_GT(a[0].approx_mean, 0.0) << init;
    EXPECT_GE(a[0].approx_max, a[0].approx_mean) << init;
  }
}

// The approximation error is |f_lin,m - f*| with f_lin,m the teacher's own Monte Carlo
// estimator on the student's heads: on the teacher's draws themselves it is 0.
TEST(ErrorDecomposition, TransportPredictorOnTheTeachersDrawsIsTheTeacher) {
  TaskConfig c;
  c.kind = "teacher_student_ntk";
  c.d_in = 3;
  c.seq_len = 4;
  c.n_train = 8;
  c.n_val = 4;
  c.anchors = 3;
  c.teacher_samples = 24;
  TeacherStudentTask t(c, 9);
  std::vector<float> x(size_t(4) * 12 * 3);
  std::vector<double> fstar(12);
  for (int i = 0; i < 12; ++i) {
    const Split s = i < 8 ? Split::train : Split::val;
    t.inputs(s, i < 8 ? i : i - 8, x.data() + size_t(i) * 12);
    fstar[size_t(i)] = t.target(s, i < 8 ? i : i - 8);
  }
  const auto e = t.transport_predictor_errors(x.data(), fstar.data(), 12, t.draws_W().data(), t.draws_U().data(), 24);
  for (double v : e) EXPECT_LT(v, 1e-6 * (1 + std::fabs(fstar[0])));
}

TEST(ErrorDecomposition, LogLogSlope) {
  EXPECT_NEAR(loglog_slope({1, 2, 4, 8}, {3, 1.5, 0.75, 0.375}), -1.0, 1e-12);
  EXPECT_NEAR(loglog_slope({10, 100}, {1, 10}), 1.0, 1e-12);
  EXPECT_TRUE(std::isnan(loglog_slope({1}, {1})));
}

// The register-blocked float kernels (16 | m, d <= 32: compiled dimensions, and padded ones
// such as 3, 5, 10) against the double-precision generic path, which the finite-difference
// tests check: forward and backward apart, and the fused forward_backward_mse of a training
// step (outputs, and gradients against backward() of the MSE's dy = coef mask (f - y)).
// shared > 0: channels [shared, d) are the same in every sequence (kernels/shared_channels.h),
// and the float model is told so.
void check_blocked(const char* kind, const char* act, int d, int T, int shared = -1, int m = 32) {
  const std::string tag = std::string(kind) + "/" + act + " d=" + std::to_string(d) + " shared=" + std::to_string(shared) +
                          " m=" + std::to_string(m);
  auto c = p3_config(kind, act, m, d, T);
  c.init = "iid";
  c.score_scale = 0.7;
  const int B = 5;
  auto mf = make_model<float>(c, B);
  auto md = make_model<double>(c, B);
  md->init(3);
  for (size_t i = 0; i < md->arena.size(); ++i) mf->arena.data()[i] = float(md->arena.data()[i]);
  auto x = randn(size_t(B) * T * d, 40, 0.5);
  if (shared > 0)
    for (int b = 1; b < B; ++b)
      for (int t = 0; t < T; ++t)
        for (int k = shared; k < d; ++k) x[(size_t(b) * T + t) * d + k] = x[size_t(t) * d + k];
  mf->set_shared_channels(shared);
  std::vector<float> xf(x.begin(), x.end());
  std::vector<double> dy = {0.3, -1.0, 0.5, 2.0, -0.7};
  std::vector<float> dyf(dy.begin(), dy.end());
  const auto rel_grad_err = [&]() {
    double num = 0, den = 0;
    for (size_t i = 0; i < md->arena.size(); ++i) {
      num += std::pow(mf->arena.grad()[i] - md->arena.grad()[i], 2);
      den += std::pow(md->arena.grad()[i], 2);
    }
    return std::sqrt(num / den);
  };
  const float* of = mf->forward(xf.data(), nullptr, B, T);
  const double* od = md->forward(x.data(), nullptr, B, T);
  std::vector<double> out(od, od + B);
  for (int b = 0; b < B; ++b) EXPECT_NEAR(of[b], od[b], 1e-5 * (1 + std::fabs(od[b]))) << tag;
  mf->arena.zero_grad();
  md->arena.zero_grad();
  mf->backward(dyf.data());
  md->backward(dy.data());
  EXPECT_LT(rel_grad_err(), 1e-5) << tag;
  // Fused: y and mask chosen so that coef mask (f - y) is dy where mask = 1.
  const double coef = 0.8;
  std::vector<double> mask = {1, 1, 0, 1, 1}, y(B), dyd(B);
  for (int b = 0; b < B; ++b) { y[b] = out[b] - dy[b] / coef; dyd[b] = coef * mask[b] * (out[b] - y[b]); }
  std::vector<float> yf(y.begin(), y.end()), maskf(mask.begin(), mask.end());
  mf->arena.zero_grad();
  md->arena.zero_grad();
  const float* fused = mf->forward_backward_mse(xf.data(), B, T, yf.data(), maskf.data(), float(coef));
  ASSERT_NE(fused, nullptr) << tag << ": no fused path";
  for (int b = 0; b < B; ++b) EXPECT_NEAR(fused[b], out[b], 1e-5 * (1 + std::fabs(out[b]))) << tag;
  md->forward(x.data(), nullptr, B, T);
  md->backward(dyd.data());
  EXPECT_LT(rel_grad_err(), 1e-5) << tag << " (fused)";
}

TEST(ShallowAttention, BlockedFloatKernelsMatchDouble) {
  for (const char* act : {"tanh", "erf"})
    for (int d : {3, 4, 8, 10, 17}) check_blocked("shallow_attention", act, d, 11);
  for (int m : {8, 6, 24}) check_blocked("shallow_attention", "tanh", 8, 11, -1, m);  // heads padded to 16 | m
}

TEST(P3Models, BlockedIndRnnMatchesDouble) {
  for (int d : {1, 5, 17}) check_blocked("indrnn", "tanh", d, 13);
  for (int m : {8, 6, 24}) check_blocked("indrnn", "tanh", 17, 13, -1, m);  // units padded to 16 | m
}

// Tokens [p_t, e_t] whose channels from P on are shared by the batch's sequences: the kernels
// that compute their terms once per batch against the double generic path.
TEST(P3Models, SharedChannelKernelsMatchDouble) {
  for (int P : {1, 2, 4}) {
    for (const char* act : {"tanh", "erf"}) check_blocked("shallow_attention", act, 17, 11, P);
    check_blocked("indrnn", "tanh", 17, 13, P);
  }
  check_blocked("shallow_attention", "tanh", 5, 11, 3);  // P = 3: no shared kernel, the blocked one
  for (int m : {8, 24}) {
    check_blocked("shallow_attention", "tanh", 17, 11, 1, m);
    check_blocked("indrnn", "tanh", 17, 13, 1, m);
  }
}

// Models without a fused path say so, and training falls back to forward + backward.
TEST(P3Models, FusedPathIsOptional) {
  for (auto c : {p3_config("indrnn", "erf", 32, 4, 5), p3_config("rnn", "tanh", 32, 4, 5),
                 p3_config("shallow_attention", "tanh", 6, 40, 5)}) {  // d = 40: above the blocked kernels' 32
    auto m = make_model<float>(c, 2);
    m->init(1);
    std::vector<float> x(size_t(2) * 5 * c.d_in, 0.1f), y(2, 0.f), mask(2, 1.f);
    EXPECT_EQ(m->forward_backward_mse(x.data(), 2, 5, y.data(), mask.data(), 1.f), nullptr) << c.kind << " " << c.activation;
  }
}

// The IndRNN's recurrent weights by default are +-1.5 with equal probability (the authors'
// code; its docstring says N(0, 1)), paired like the other halves; u_init = "normal" keeps N(0, 1).
TEST(P3Models, IndRnnRecurrentInitIsPlusMinusOnePointFiveByDefault) {
  ModelConfig c = p3_config("indrnn", "tanh", 400);
  c.u_init = ModelConfig{}.u_init;  // the default
  EXPECT_EQ(c.u_init, "pm1.5");
  auto m = make_model<double>(c, 1);
  m->init(4);
  const auto& a = m->arena;
  const double* u = a.data().data() + a.info(a.find("u")).offset;
  int plus = 0;
  for (int i = 0; i < 400; ++i) {
    EXPECT_EQ(std::fabs(u[i]), 1.5) << i;
    plus += u[i] > 0;
  }
  EXPECT_GT(plus, 150);
  EXPECT_LT(plus, 250);
  c.u_init = "normal";
  auto n = make_model<double>(c, 1);
  n->init(4);
  const double* un = n->arena.data().data() + n->arena.info(n->arena.find("u")).offset;
  int not_pm = 0;
  for (int i = 0; i < 400; ++i) not_pm += std::fabs(std::fabs(un[i]) - 1.5) > 1e-9;
  EXPECT_EQ(not_pm, 400);
}
