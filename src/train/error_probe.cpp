#include "train/error_probe.h"

#include <cmath>
#include <memory>

#include "core/error.h"
#include "models/shallow_attention.h"
#include "tasks/teacher_student.h"

namespace attnlab {

double loglog_slope(const std::vector<double>& x, const std::vector<double>& y) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  int n = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!(x[i] > 0) || !(y[i] > 0)) continue;
    const double lx = std::log(x[i]), ly = std::log(y[i]);
    sx += lx; sy += ly; sxx += lx * lx; sxy += lx * ly;
    ++n;
  }
  if (n < 2) return NAN;
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

// The inputs the errors are taken over: the first `inputs` of the training set, then of the
// validation set (all n of them by default, as the authors).
std::vector<ErrorPoint> p3_error_decomposition(const RunConfig& cfg, const std::vector<int>& widths, int64_t inputs,
                                               const TeacherStudentTask* built) {
  if (cfg.model.kind != "shallow_attention") throw UserError("model.kind: the error decomposition is for shallow_attention");
  if (cfg.task.kind != "teacher_student_ntk") throw UserError("task.kind: the error decomposition needs teacher_student_ntk");
  const uint64_t task_seed = uint64_t(cfg.task.seed >= 0 ? cfg.task.seed : cfg.seed);
  TaskConfig tc = cfg.task;
  if (inputs <= 0) inputs = tc.n_train + tc.n_val;
  tc.n_val = std::max<int64_t>(tc.n_val, inputs - tc.n_train);
  std::unique_ptr<TeacherStudentTask> own;
  if (!built || tc.n_val > cfg.task.n_val) own = std::make_unique<TeacherStudentTask>(tc, task_seed);
  const TeacherStudentTask& task = own ? *own : *built;
  const int T = tc.seq_len, d = tc.d_in;
  const std::vector<double> rho = cfg.train.rho.empty() ? std::vector<double>{3.0, 3.0, 3.0} : cfg.train.rho;
  const size_t n = size_t(inputs);
  std::vector<double> xs(n * T * d), fstar(n);
  {
    std::vector<float> x(size_t(T) * d);
    for (size_t i = 0; i < n; ++i) {
      const bool tr = int64_t(i) < tc.n_train;
      const Split sp = tr ? Split::train : Split::val;
      const int64_t idx = tr ? int64_t(i) : int64_t(i) - tc.n_train;
      task.inputs(sp, idx, x.data());
      std::copy(x.begin(), x.end(), xs.begin() + std::ptrdiff_t(i * T * d));
      fstar[i] = task.target(sp, idx);
    }
  }
  std::vector<ErrorPoint> out;
  for (int m : widths) {
    ModelConfig mc = cfg.model;
    mc.width = m;
    ShallowAttention<double> model(mc, int(n));
    model.init(uint64_t(cfg.seed));
    const auto& A = model.arena;
    const double* W = A.p(A.find("W"));
    const double* U = A.p(A.find("U"));
    ErrorPoint pt;
    pt.m = m;
    // E2: the transport predictor on the m initial heads against the teacher.
    std::vector<float> xf(xs.begin(), xs.end());
    const std::vector<double> ap = task.transport_predictor_errors(xf.data(), fstar.data(), int64_t(n), W, U, m);
    for (double e : ap) {
      pt.approx_max = std::max(pt.approx_max, e);
      pt.approx_mean += e / double(n);
    }
    // E3: one shift Delta for the data set. Per head, dU_i and dW_i point along the gradient of
    // sum_b h_i(X_b) (= sign(c_i) sqrt(m) times that of sum_b f(X_b)), with lengths
    // rho_u / sqrt m and rho_w / sqrt m; dc_i = +rho_c / sqrt m.
    const auto slices = model.head_slices();
    const std::vector<double> theta0(model.arena.data().begin(), model.arena.data().end());
    const size_t c_off = A.info(A.find("c")).offset;
    const double* p0 = model.forward(xs.data(), nullptr, int(n), T);
    const std::vector<double> f0(p0, p0 + n);
    model.arena.zero_grad();
    const std::vector<double> ones(n, 1.0);
    model.backward(ones.data());
    const std::vector<double> gsum(model.arena.grad().begin(), model.arena.grad().end());
    std::vector<double> delta(theta0.size(), 0.0);
    for (const auto& sl : slices) {
      const double r = rho[size_t(sl.group)] / std::sqrt(double(m));
      if (sl.group == 0) {  // c
        for (auto [off, len] : sl.ranges)
          for (size_t j = off; j < off + len; ++j) delta[j] = r;
        continue;
      }
      double n2 = 0;
      for (auto [off, len] : sl.ranges)
        for (size_t j = off; j < off + len; ++j) n2 += gsum[j] * gsum[j];
      if (n2 == 0) continue;
      const double sign = theta0[c_off + size_t(sl.head)] < 0 ? -1.0 : 1.0;
      for (auto [off, len] : sl.ranges)
        for (size_t j = off; j < off + len; ++j) delta[j] = sign * r * gsum[j] / std::sqrt(n2);
    }
    for (size_t j = 0; j < theta0.size(); ++j) model.arena.data()[j] = theta0[j] + delta[j];
    const double* p1 = model.forward(xs.data(), nullptr, int(n), T);
    const std::vector<double> f1(p1, p1 + n);
    std::copy(theta0.begin(), theta0.end(), model.arena.data().begin());
    // <grad f(theta0)(X_b), Delta> for every b: the directional derivative, one input at a time.
    std::vector<double> lin(n);
    ShallowAttention<double> one(mc, 1);
    std::copy(theta0.begin(), theta0.end(), one.arena.data().begin());
    const double unit = 1.0;
    for (size_t i = 0; i < n; ++i) {
      one.forward(xs.data() + i * T * d, nullptr, 1, T);
      one.arena.zero_grad();
      one.backward(&unit);
      double s = 0;
      for (size_t j = 0; j < delta.size(); ++j) s += one.arena.grad()[j] * delta[j];
      lin[i] = s;
    }
    for (size_t i = 0; i < n; ++i) {
      const double e = std::fabs(f1[i] - f0[i] - lin[i]);
      pt.lin_max = std::max(pt.lin_max, e);
      pt.lin_mean += e / double(n);
    }
    out.push_back(pt);
  }
  return out;
}

}  // namespace attnlab
