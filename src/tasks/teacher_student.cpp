#include "tasks/teacher_student.h"

#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "models/shallow_attention.h"

namespace attnlab {

namespace {
const char* kStreams[3] = {"ts/train", "ts/val", "ts/test"};

// Tangent features of one input x [T, d] at the draw (W [d, d], U [d]); sigma = tanh.
struct Features {
  double phi_c = 0, dsig = 0;
  std::vector<double> a, g;  // a = X alpha; g = (sum_t alpha_t x_t x_t^T - a a^T) U
};
Features features(const float* x, int T, int d, const double* W, const double* U) {
  Features f;
  const float* xT = x + size_t(T - 1) * d;
  std::vector<double> q(size_t(d), 0.0), alpha(static_cast<size_t>(T));
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j) q[i] += W[i * d + j] * xT[j];  // q = W x_T
  double mx = -INFINITY;
  for (int t = 0; t < T; ++t) {
    double s = 0;
    for (int i = 0; i < d; ++i) s += x[size_t(t) * d + i] * q[i];
    alpha[t] = s;
    mx = std::max(mx, s);
  }
  double z = 0;
  for (double& v : alpha) { v = std::exp(v - mx); z += v; }
  f.a.assign(size_t(d), 0.0);
  std::vector<double> xu(static_cast<size_t>(T));
  for (int t = 0; t < T; ++t) {
    alpha[t] /= z;
    double s = 0;
    for (int i = 0; i < d; ++i) { f.a[i] += alpha[t] * x[size_t(t) * d + i]; s += x[size_t(t) * d + i] * U[i]; }
    xu[t] = s;
  }
  double au = 0;  // = s = U^T a
  for (int i = 0; i < d; ++i) au += f.a[i] * U[i];
  const double s = au;
  f.g.assign(size_t(d), 0.0);
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < d; ++i) f.g[i] += alpha[t] * x[size_t(t) * d + i] * xu[t];
  for (int i = 0; i < d; ++i) f.g[i] -= f.a[i] * au;
  const double th = std::tanh(s);
  f.phi_c = th;
  f.dsig = 1 - th * th;
  return f;
}

void clip(double* v, size_t n, double nu) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += v[i] * v[i];
  s = std::sqrt(s);
  if (s > nu)
    for (size_t i = 0; i < n; ++i) v[i] *= nu / s;
}
}  // namespace

TeacherStudentTask::TeacherStudentTask(const TaskConfig& cfg, uint64_t seed) : cfg_(cfg), seed_(seed) {
  const int64_t sizes[3] = {cfg.n_train, cfg.n_val, cfg.n_test};
  if (cfg.n_train <= 0) throw UserError("task.n_train: " + cfg.kind + " needs a fixed training set (set task.n or task.n_train)");
  const int T = cfg.seq_len, d = cfg.d_in;
  if (cfg.kind == "teacher_student_ntk") {
    build_ntk();
    for (int s = 0; s < 3; ++s) {
      targets_[s].resize(size_t(sizes[s]));
#pragma omp parallel for schedule(dynamic, 16)
      for (int64_t i = 0; i < sizes[s]; ++i) {
        std::vector<float> x(size_t(T) * d);
        inputs(Split(s), i, x.data());
        targets_[s][size_t(i)] = float(ntk_teacher(x.data()));
      }
    }
    return;
  }
  ModelConfig mc;
  mc.kind = "shallow_attention";
  mc.width = cfg.teacher_width;
  mc.init = "iid";
  mc.d_in = d;
  mc.max_len = T;
  const int chunk = 256;
  ShallowAttention<double> teacher(mc, chunk);
  teacher.init(seed ^ 0x7eac4e7ull);
  std::vector<float> xf(size_t(chunk) * T * d);
  std::vector<double> xd(xf.size());
  for (int s = 0; s < 3; ++s) {
    targets_[s].resize(size_t(sizes[s]));
    for (int64_t start = 0; start < sizes[s]; start += chunk) {
      const int B = int(std::min<int64_t>(chunk, sizes[s] - start));
      for (int b = 0; b < B; ++b) inputs(Split(s), start + b, xf.data() + size_t(b) * T * d);
      std::copy(xf.begin(), xf.begin() + std::ptrdiff_t(size_t(B) * T * d), xd.begin());
      const double* y = teacher.forward(xd.data(), nullptr, B, T);
      for (int b = 0; b < B; ++b) targets_[s][size_t(start + b)] = float(y[b]);
    }
  }
}

void TeacherStudentTask::inputs(Split split, int64_t index, float* x) const {
  const int T = cfg_.seq_len, d = cfg_.d_in;
  const uint64_t stream = stream_id(kStreams[int(split)]), base = uint64_t(index) * uint64_t(T) * uint64_t(d);
  for (int t = 0; t < T; ++t) {
    double n2 = 0;
    for (int i = 0; i < d; ++i) {
      const double v = rng_normal(seed_, stream, base + uint64_t(t) * d + i);
      x[size_t(t) * d + i] = float(v);
      n2 += v * v;
    }
    const double k = std::min(1.0, 1.0 / std::sqrt(n2));
    for (int i = 0; i < d; ++i) x[size_t(t) * d + i] = float(x[size_t(t) * d + i] * k);
  }
}

void TeacherStudentTask::build_ntk() {
  const int T = cfg_.seq_len, d = cfg_.d_in, M = cfg_.teacher_samples, R = cfg_.anchors;
  W_.resize(size_t(M) * d * d);
  U_.resize(size_t(M) * d);
  for (size_t i = 0; i < W_.size(); ++i) W_[i] = rng_normal(seed_, stream_id("ntk/W"), i);
  for (size_t i = 0; i < U_.size(); ++i) U_[i] = rng_normal(seed_, stream_id("ntk/U"), i);
  // Anchor sequences (their own stream, normalized like the inputs) and weights ||beta||_1 = 1.
  anchors_.resize(size_t(R) * T * d);
  for (int r = 0; r < R; ++r) {
    const uint64_t stream = stream_id("ntk/anchors"), base = uint64_t(r) * T * d;
    for (int t = 0; t < T; ++t) {
      double n2 = 0;
      float* row = anchors_.data() + (size_t(r) * T + t) * d;
      for (int i = 0; i < d; ++i) { row[i] = float(rng_normal(seed_, stream, base + uint64_t(t) * d + i)); n2 += double(row[i]) * row[i]; }
      const double k = std::min(1.0, 1.0 / std::sqrt(n2));
      for (int i = 0; i < d; ++i) row[i] = float(row[i] * k);
    }
  }
  beta_.resize(size_t(R));
  double l1 = 0;
  for (int r = 0; r < R; ++r) { beta_[r] = rng_normal(seed_, stream_id("ntk/beta"), uint64_t(r)); l1 += std::fabs(beta_[r]); }
  for (double& b : beta_) b /= l1;
  vc_.assign(size_t(M), 0.0);
  vu_.assign(size_t(M) * d, 0.0);
  vw_.assign(size_t(M) * d * d, 0.0);
#pragma omp parallel for schedule(static)
  for (int j = 0; j < M; ++j)
    transport(W_.data() + size_t(j) * d * d, U_.data() + size_t(j) * d, &vc_[j], vu_.data() + size_t(j) * d,
              vw_.data() + size_t(j) * d * d);
}

void TeacherStudentTask::transport(const double* W, const double* U, double* vc, double* vu, double* vw) const {
  const int T = cfg_.seq_len, d = cfg_.d_in, R = cfg_.anchors;
  *vc = 0;
  std::fill(vu, vu + d, 0.0);
  std::fill(vw, vw + size_t(d) * d, 0.0);
  for (int r = 0; r < R; ++r) {
    const float* xr = anchors_.data() + size_t(r) * T * d;
    const Features f = features(xr, T, d, W, U);
    const float* xT = xr + size_t(T - 1) * d;
    *vc += beta_[r] * f.phi_c;
    for (int i = 0; i < d; ++i) vu[i] += beta_[r] * f.dsig * f.a[i];
    for (int i = 0; i < d; ++i)
      for (int k = 0; k < d; ++k) vw[size_t(i) * d + k] += beta_[r] * f.dsig * f.g[i] * xT[k];
  }
  clip(vc, 1, cfg_.nu);
  clip(vu, size_t(d), cfg_.nu);
  clip(vw, size_t(d) * d, cfg_.nu);
}

double TeacherStudentTask::kernel_term(const float* x, const double* W, const double* U, double vc, const double* vu,
                                       const double* vw) const {
  const int T = cfg_.seq_len, d = cfg_.d_in;
  const float* xT = x + size_t(T - 1) * d;
  const Features f = features(x, T, d, W, U);
  double v = f.phi_c * vc;
  for (int i = 0; i < d; ++i) v += f.dsig * f.a[i] * vu[i];
  for (int i = 0; i < d; ++i) {  // <phi_w, v_w>_F = sigma'(s) g^T v_w x_T
    double vx = 0;
    for (int k = 0; k < d; ++k) vx += vw[size_t(i) * d + k] * xT[k];
    v += f.dsig * f.g[i] * vx;
  }
  return v;
}

double TeacherStudentTask::ntk_teacher(const float* x) const {
  const int d = cfg_.d_in, M = cfg_.teacher_samples;
  double sum = 0;
  for (int j = 0; j < M; ++j)
    sum += kernel_term(x, W_.data() + size_t(j) * d * d, U_.data() + size_t(j) * d, vc_[j], vu_.data() + size_t(j) * d,
                       vw_.data() + size_t(j) * d * d);
  return sum / M;
}

double TeacherStudentTask::transport_predictor(const float* x, const double* W, const double* U, int m) const {
  const int d = cfg_.d_in;
  std::vector<double> vu(static_cast<size_t>(d)), vw(size_t(d) * d);
  double sum = 0, vc = 0;
  for (int i = 0; i < m; ++i) {
    const double* Wi = W + size_t(i) * d * d;
    const double* Ui = U + size_t(i) * d;
    transport(Wi, Ui, &vc, vu.data(), vw.data());
    sum += kernel_term(x, Wi, Ui, vc, vu.data(), vw.data());
  }
  return sum / m;
}

void TeacherStudentTask::fill(Split split, const int64_t* indices, int B, Batch& batch) const {
  const int T = cfg_.seq_len, d = cfg_.d_in;
  batch.shape_real(B, T, d, size_t(B), size_t(B), 1.f);  // one target per sequence
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    inputs(split, indices[b], batch.x.data() + size_t(b) * T * d);
    batch.y[b] = targets_[int(split)][size_t(indices[b])];
  }
}

namespace {
void teacher_dims(Keys& k, TaskConfig& c) {
  if (k.reading() && k.has("d") && k.has("d_in")) k.fail("d", "give task.d or task.d_in, not both");
  k.integer("d_in", c.d_in, 1, 1 << 16);         // d, the token dimension
  k.alias("d", "d_in", c.d_in, 1, 1 << 16);      // the paper's name for it
  if (k.reading()) c.d_out = 1;
}
}  // namespace

void teacher_student_ntk_keys(Keys& k, TaskConfig& c) {
  teacher_dims(k, c);
  k.integer("anchors", c.anchors, 1);                  // R anchor sequences
  k.number("nu", c.nu, 0.0, true);                     // bound on the transport map's norms
  k.integer("teacher_samples", c.teacher_samples, 1);  // M_teacher Monte Carlo draws
}

void teacher_student_model_keys(Keys& k, TaskConfig& c) {
  teacher_dims(k, c);
  k.integer("teacher_width", c.teacher_width, 2);  // heads of the random teacher
}

}  // namespace attnlab
