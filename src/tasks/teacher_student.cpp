#include "tasks/teacher_student.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "core/error.h"
#include "core/rng.h"
#include "models/shallow_attention.h"

namespace attnlab {

namespace {
const char* kStreams[3] = {"ts/train", "ts/val", "ts/test"};

// Tangent features of one input x [T, d] at the draw (W [d, d], U [d]); sigma = tanh. With
// diag, the scores use diag(W) x_T.
struct Features {
  double phi_c = 0, dsig = 0;
  std::vector<double> a, g;  // a = X alpha; g = (sum_t alpha_t x_t x_t^T - a a^T) U
};
Features features(const float* x, int T, int d, const double* W, const double* U, bool diag) {
  Features f;
  const float* xT = x + size_t(T - 1) * d;
  std::vector<double> q(size_t(d), 0.0), alpha(static_cast<size_t>(T));
  for (int i = 0; i < d; ++i)
    if (diag)
      q[i] = W[i * d + i] * xT[i];
    else
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
  // Anchors: the first R training inputs. The inputs are i.i.d., so these are a uniformly
  // random sample of the n inputs (the authors draw R at random), and the same for every n:
  // for a seed, a larger data set keeps the teacher (the n-scaling experiment relies on it).
  // Weights beta ~ N(0, I_R), ||beta||_1 = 1.
  if (R > cfg_.n_train)
    throw UserError("task.anchors: " + std::to_string(R) + " anchors need at least as many training inputs, but n_train = " +
                    std::to_string(cfg_.n_train));
  anchors_.resize(size_t(R) * T * d);
  anchor_refs_.clear();
  for (int r = 0; r < R; ++r) {
    anchor_refs_.push_back({Split::train, r});
    inputs(Split::train, r, anchors_.data() + size_t(r) * T * d);
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
  // The draws in blocks of kDrawLanes, lanes innermost, for ntk_teacher: per block [W (d*d);
  // U (d); vc (1); vu (d); vw (d*d)] vectors. Padding draws have v = 0 and add nothing.
  const bool diag = cfg_.teacher_w == "diagonal";
  const int nb = (M + kDrawLanes - 1) / kDrawLanes, per = 2 * d * d + 2 * d + 1;
  blocks_.assign(size_t(nb) * per, v8d{});
  for (int j = 0; j < M; ++j) {
    v8d* b = blocks_.data() + size_t(j / kDrawLanes) * per;
    const int l = j % kDrawLanes;
    for (int k = 0; k < d * d; ++k) {
      const bool off = diag && k / d != k % d;  // the diagonal variant's scores see diag(W) only
      b[k][l] = off ? 0.0 : W_[size_t(j) * d * d + k];
      b[d * d + 2 * d + 1 + k][l] = vw_[size_t(j) * d * d + k];
    }
    for (int k = 0; k < d; ++k) {
      b[d * d + k][l] = U_[size_t(j) * d + k];
      b[d * d + d + 1 + k][l] = vu_[size_t(j) * d + k];
    }
    b[d * d + d][l] = vc_[size_t(j)];
  }
}

void TeacherStudentTask::transport(const double* W, const double* U, double* vc, double* vu, double* vw) const {
  const int T = cfg_.seq_len, d = cfg_.d_in, R = cfg_.anchors;
  const bool diag = cfg_.teacher_w == "diagonal";
  const double nu_c = cfg_.nu[0], nu_u = cfg_.nu[1], nu_w = cfg_.nu[2];
  *vc = 0;
  std::fill(vu, vu + d, 0.0);
  std::fill(vw, vw + size_t(d) * d, 0.0);
  for (int r = 0; r < R; ++r) {
    const float* xr = anchors_.data() + size_t(r) * T * d;
    const Features f = features(xr, T, d, W, U, diag);
    const float* xT = xr + size_t(T - 1) * d;
    *vc += nu_c * beta_[r] * f.phi_c;
    for (int i = 0; i < d; ++i) vu[i] += nu_u * beta_[r] * f.dsig * f.a[i];
    // phi_w(X_r) = sigma'(s) g x_T^T has Frobenius norm |sigma'(s)| ||g|| ||x_T||; clipped to nu_w.
    double g2 = 0, x2 = 0;
    for (int i = 0; i < d; ++i) { g2 += f.g[i] * f.g[i]; x2 += double(xT[i]) * xT[i]; }
    const double norm = std::fabs(f.dsig) * std::sqrt(g2 * x2);
    const double k = beta_[r] * f.dsig * (norm > nu_w ? nu_w / norm : 1.0);
    for (int i = 0; i < d; ++i)
      for (int j = 0; j < d; ++j) vw[size_t(i) * d + j] += k * f.g[i] * xT[j];
  }
}

double TeacherStudentTask::kernel_term(const float* x, const double* W, const double* U, double vc, const double* vu,
                                       const double* vw) const {
  const int T = cfg_.seq_len, d = cfg_.d_in;
  const float* xT = x + size_t(T - 1) * d;
  const Features f = features(x, T, d, W, U, cfg_.teacher_w == "diagonal");
  double v = f.phi_c * vc;
  for (int i = 0; i < d; ++i) v += f.dsig * f.a[i] * vu[i];
  for (int i = 0; i < d; ++i) {  // <phi_w, v_w>_F = sigma'(s) g^T v_w x_T
    double vx = 0;
    for (int k = 0; k < d; ++k) vx += vw[size_t(i) * d + k] * xT[k];
    v += f.dsig * f.g[i] * vx;
  }
  return v;
}

// The kernel terms of kDrawLanes draws at once, lanes = draws (the same formulas as
// features() and kernel_term(), vectorized across draws: the teacher sums 8192 of them per
// input, and one term at a time took ~15 s of labels per E1 run).
double TeacherStudentTask::ntk_teacher(const float* x) const {
  const int T = cfg_.seq_len, d = cfg_.d_in, M = cfg_.teacher_samples;
  const int nb = (M + kDrawLanes - 1) / kDrawLanes, per = 2 * d * d + 2 * d + 1;
  const float* xT = x + size_t(T - 1) * d;
  thread_local std::vector<v8d> scratch;
  scratch.resize(size_t(2 * T + 4 * d));
  v8d* p = scratch.data();   // [T] scores, then probabilities
  v8d* xu = p + T;           // [T] <U, x_t>
  v8d* q = xu + T;           // [d] W x_T
  v8d* a = q + d;            // [d] sum_t p_t x_t
  v8d* g = a + d;            // [d] sum_t p_t <U, x_t> x_t - a <U, a>
  v8d* vx = g + d;           // [d] v_w x_T
  v8d total{};
  for (int blk = 0; blk < nb; ++blk) {
    const v8d* W = blocks_.data() + size_t(blk) * per;
    const v8d* U = W + d * d;
    const v8d vc = U[d];
    const v8d* vu = U + d + 1;
    const v8d* vw = vu + d;
    for (int k = 0; k < d; ++k) {
      v8d acc{}, acw{};
      for (int j = 0; j < d; ++j) { acc += W[k * d + j] * double(xT[j]); acw += vw[k * d + j] * double(xT[j]); }
      q[k] = acc;
      vx[k] = acw;
    }
    v8d mx = v8d{} - INFINITY;
    for (int t = 0; t < T; ++t) {
      v8d s{}, u{};
      for (int k = 0; k < d; ++k) { s += q[k] * double(x[size_t(t) * d + k]); u += U[k] * double(x[size_t(t) * d + k]); }
      p[t] = s;
      xu[t] = u;
      mx = s > mx ? s : mx;
    }
    v8d z{};
    for (int t = 0; t < T; ++t) {
      for (int l = 0; l < kDrawLanes; ++l) p[t][l] = std::exp(p[t][l] - mx[l]);
      z += p[t];
    }
    const v8d inv = 1.0 / z;
    for (int k = 0; k < d; ++k) { a[k] = v8d{}; g[k] = v8d{}; }
    v8d su{};
    for (int t = 0; t < T; ++t) {
      const v8d pt = p[t] * inv, pu = pt * xu[t];
      su += pu;  // = <U, a>
      for (int k = 0; k < d; ++k) {
        const double xk = x[size_t(t) * d + k];
        a[k] += pt * xk;
        g[k] += pu * xk;
      }
    }
    v8d lin{}, th;
    for (int k = 0; k < d; ++k) lin += a[k] * vu[k] + (g[k] - a[k] * su) * vx[k];
    for (int l = 0; l < kDrawLanes; ++l) th[l] = std::tanh(su[l]);
    total += th * vc + (1.0 - th * th) * lin;
  }
  double sum = 0;
  for (int l = 0; l < kDrawLanes; ++l) sum += total[l];
  return sum / M;
}

std::vector<double> TeacherStudentTask::transport_predictor_errors(const float* x, const double* fstar, int64_t n,
                                                                const double* W, const double* U, int m) const {
  const int T = cfg_.seq_len, d = cfg_.d_in;
  std::vector<double> vc(static_cast<size_t>(m)), vu(size_t(m) * d), vw(size_t(m) * d * d);
#pragma omp parallel for schedule(static)
  for (int i = 0; i < m; ++i)
    transport(W + size_t(i) * d * d, U + size_t(i) * d, &vc[size_t(i)], vu.data() + size_t(i) * d, vw.data() + size_t(i) * d * d);
  std::vector<double> err(static_cast<size_t>(n));
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t b = 0; b < n; ++b) {
    const float* xb = x + size_t(b) * T * d;
    double sum = 0;
    for (int i = 0; i < m; ++i)
      sum += kernel_term(xb, W + size_t(i) * d * d, U + size_t(i) * d, vc[size_t(i)], vu.data() + size_t(i) * d,
                         vw.data() + size_t(i) * d * d);
    err[size_t(b)] = std::fabs(sum / m - fstar[b]);
  }
  return err;
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
  k.integer("anchors", c.anchors, 1);                  // R anchors, drawn from the inputs
  k.numbers("nu", c.nu, 0.0, true);                    // (nu_c, nu_u, nu_w); one number: all three
  if (k.reading()) {
    if (c.nu.size() == 1) c.nu.assign(3, c.nu[0]);
    if (c.nu.size() != 3) k.fail("nu", "expected a number or a list of three numbers [nu_c, nu_u, nu_w]");
  }
  k.choice("teacher_w", c.teacher_w, {"full", "diagonal"});  // W of the teacher's draws: full (theory) or diag (authors' code)
  k.integer("teacher_samples", c.teacher_samples, 1);  // M_teacher Monte Carlo draws
}

void teacher_student_model_keys(Keys& k, TaskConfig& c) {
  teacher_dims(k, c);
  k.integer("teacher_width", c.teacher_width, 2);  // heads of the random teacher
}

}  // namespace attnlab
