#include "train/error_probe.h"

#include <cmath>

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

std::vector<ErrorPoint> p3_error_decomposition(const RunConfig& cfg, const std::vector<int>& widths, int inputs) {
  if (cfg.model.kind != "shallow_attention") throw UserError("model.kind: the error decomposition is for shallow_attention");
  if (cfg.task.kind != "teacher_student_ntk") throw UserError("task.kind: the error decomposition needs teacher_student_ntk");
  const uint64_t task_seed = uint64_t(cfg.task.seed >= 0 ? cfg.task.seed : cfg.seed);
  TaskConfig tc = cfg.task;
  tc.n_val = std::max<int64_t>(tc.n_val, inputs);
  TeacherStudentTask task(tc, task_seed);
  const int T = tc.seq_len, d = tc.d_in;
  const std::vector<double> rho = cfg.train.rho.empty() ? std::vector<double>{3.0, 3.0, 3.0} : cfg.train.rho;
  std::vector<std::vector<float>> xs(size_t(inputs), std::vector<float>(size_t(T) * d));
  std::vector<double> fstar(static_cast<size_t>(inputs));
  for (int i = 0; i < inputs; ++i) {
    task.inputs(Split::val, i, xs[i].data());
    fstar[i] = task.ntk_teacher(xs[i].data());
  }
  std::vector<ErrorPoint> out;
  for (int m : widths) {
    ModelConfig mc = cfg.model;
    mc.width = m;
    ShallowAttention<double> model(mc, 1);
    model.init(uint64_t(cfg.seed));
    const auto& A = model.arena;
    const double* W = A.p(A.find("W"));
    const double* U = A.p(A.find("U"));
    ErrorPoint pt;
    pt.m = m;
    std::vector<double> ap(static_cast<size_t>(inputs));
#pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i < inputs; ++i) ap[i] = std::fabs(task.transport_predictor(xs[i].data(), W, U, m) - fstar[i]);
    const auto slices = model.head_slices();
    const std::vector<double> theta0(model.arena.data().begin(), model.arena.data().end());
    for (int i = 0; i < inputs; ++i) {
      std::vector<double> x(xs[i].begin(), xs[i].end());
      std::copy(theta0.begin(), theta0.end(), model.arena.data().begin());
      const double f0 = model.forward(x.data(), nullptr, 1, T)[0];
      model.arena.zero_grad();
      const double one = 1.0;
      model.backward(&one);
      std::vector<double> delta(theta0.size(), 0.0);
      double lin = 0;
      for (const auto& s : slices) {
        double n2 = 0;
        for (auto [off, len] : s.ranges)
          for (size_t j = off; j < off + len; ++j) n2 += model.arena.grad()[j] * model.arena.grad()[j];
        if (n2 == 0) continue;
        const double k = rho[size_t(s.group)] / std::sqrt(double(m)) / std::sqrt(n2);
        for (auto [off, len] : s.ranges)
          for (size_t j = off; j < off + len; ++j) {
            delta[j] = k * model.arena.grad()[j];
            lin += model.arena.grad()[j] * delta[j];
          }
      }
      for (size_t j = 0; j < theta0.size(); ++j) model.arena.data()[j] = theta0[j] + delta[j];
      const double f1 = model.forward(x.data(), nullptr, 1, T)[0];
      const double e = std::fabs(f1 - f0 - lin);
      pt.lin_max = std::max(pt.lin_max, e);
      pt.lin_mean += e / inputs;
      pt.approx_max = std::max(pt.approx_max, ap[i]);
      pt.approx_mean += ap[i] / inputs;
    }
    out.push_back(pt);
  }
  return out;
}

}  // namespace attnlab
