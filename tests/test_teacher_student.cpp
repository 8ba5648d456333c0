// The NTK teacher of paper 3 against its definition (the authors' construction,
// ../shared/papers/p3_authors_setup.md): an independent reference whose tangent features are
// finite differences of one head h(X; W, U) = tanh(U^T X softmax(X^T W x_T)), not the
// closed forms of tasks/teacher_student.cpp; anchors drawn from the inputs with
// ||beta||_1 = 1; nu = (nu_c, nu_u, nu_w) with phi_w of each anchor clipped to nu_w; the
// diagonal-W variant of the authors' code; tokens of norm <= 1.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "core/error.h"
#include "io/config.h"
#include "tasks/teacher_student.h"

using namespace attnlab;

namespace {

// One head's output at (W [d, d], U [d]) for X [T, d].
double head(const std::vector<double>& X, int T, int d, const std::vector<double>& W, const std::vector<double>& U) {
  const double* xT = X.data() + size_t(T - 1) * d;
  std::vector<double> z(static_cast<size_t>(T));
  double mx = -1e300, sum = 0;
  for (int t = 0; t < T; ++t) {
    double s = 0;
    for (int i = 0; i < d; ++i)
      for (int j = 0; j < d; ++j) s += X[size_t(t) * d + i] * W[size_t(i) * d + j] * xT[j];
    z[t] = s;
    mx = std::max(mx, s);
  }
  for (double& v : z) { v = std::exp(v - mx); sum += v; }
  double s = 0;
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < d; ++i) s += U[i] * X[size_t(t) * d + i] * z[t] / sum;
  return std::tanh(s);
}

struct Phi {
  double c;
  std::vector<double> u, w;
};

// phi_c = h, phi_u = dh/dU, phi_w = dh/dW by central differences.
Phi phi_fd(const std::vector<double>& X, int T, int d, std::vector<double> W, std::vector<double> U) {
  const double e = 1e-5;
  Phi p{head(X, T, d, W, U), {}, {}};
  for (int i = 0; i < d; ++i) {
    const double u0 = U[i];
    U[i] = u0 + e; const double hp = head(X, T, d, W, U);
    U[i] = u0 - e; const double hm = head(X, T, d, W, U);
    U[i] = u0;
    p.u.push_back((hp - hm) / (2 * e));
  }
  for (size_t k = 0; k < W.size(); ++k) {
    const double w0 = W[k];
    W[k] = w0 + e; const double hp = head(X, T, d, W, U);
    W[k] = w0 - e; const double hm = head(X, T, d, W, U);
    W[k] = w0;
    p.w.push_back((hp - hm) / (2 * e));
  }
  return p;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

std::vector<double> tokens(const TeacherStudentTask& t, Split s, int64_t i, int T, int d) {
  std::vector<float> x(size_t(T) * d);
  t.inputs(s, i, x.data());
  return {x.begin(), x.end()};
}

TaskConfig small_config() {
  TaskConfig c;
  c.kind = "teacher_student_ntk";
  c.d_in = 3;
  c.seq_len = 4;
  c.n_train = 6;
  c.n_val = 4;
  c.n_test = 2;
  c.anchors = 3;
  c.teacher_samples = 5;
  return c;
}

// y(X) = (1/M) sum_j sum_r beta_r (nu_c phi_c(X) phi_c(X_r) + nu_u <phi_u(X), phi_u(X_r)>
//        + <phi_w(X), clip(phi_w(X_r), nu_w)>), phi at the draw (W_j, U_j), with W_j's
// off-diagonal zeroed for the diagonal variant.
double reference(const TeacherStudentTask& t, const TaskConfig& c, const std::vector<double>& X) {
  const int T = c.seq_len, d = c.d_in;
  double y = 0;
  for (int j = 0; j < c.teacher_samples; ++j) {
    std::vector<double> W(t.draws_W().begin() + j * d * d, t.draws_W().begin() + (j + 1) * d * d);
    std::vector<double> U(t.draws_U().begin() + j * d, t.draws_U().begin() + (j + 1) * d);
    if (c.teacher_w == "diagonal")
      for (int a = 0; a < d; ++a)
        for (int b = 0; b < d; ++b)
          if (a != b) W[size_t(a) * d + b] = 0;
    const Phi px = phi_fd(X, T, d, W, U);
    for (int r = 0; r < c.anchors; ++r) {
      const auto [split, idx] = t.anchor_inputs()[size_t(r)];
      const Phi pr = phi_fd(tokens(t, split, idx, T, d), T, d, W, U);
      const double nw = std::sqrt(dot(pr.w, pr.w));
      const double clip = nw > c.nu[2] ? c.nu[2] / nw : 1.0;
      y += t.anchor_weights()[size_t(r)] *
           (c.nu[0] * px.c * pr.c + c.nu[1] * dot(px.u, pr.u) + clip * dot(px.w, pr.w));
    }
  }
  return y / c.teacher_samples;
}

}  // namespace

TEST(TeacherStudentNtk, TeacherMatchesTheDefinitionWithFiniteDifferenceFeatures) {
  for (const char* w : {"full", "diagonal"})
    for (double nu_w : {100.0, 0.02}) {  // no anchor clipped; every anchor clipped
      TaskConfig c = small_config();
      c.teacher_w = w;
      c.nu = {0.7, 1.3, nu_w};
      TeacherStudentTask t(c, 11);
      for (auto [s, i] : {std::pair{Split::train, int64_t(0)}, {Split::val, 3}, {Split::test, 1}}) {
        const auto X = tokens(t, s, i, c.seq_len, c.d_in);
        std::vector<float> xf(X.begin(), X.end());
        const double ref = reference(t, c, X);
        EXPECT_NEAR(t.ntk_teacher(xf.data()), ref, 1e-7 * (1 + std::fabs(ref))) << w << " nu_w=" << nu_w;
      }
    }
}

TEST(TeacherStudentNtk, DiagonalVariantDiffersFromTheFullTeacher) {
  TaskConfig c = small_config();
  TeacherStudentTask full(c, 5);
  c.teacher_w = "diagonal";
  TeacherStudentTask diag(c, 5);
  std::vector<float> x(size_t(c.seq_len) * c.d_in);
  full.inputs(Split::val, 1, x.data());
  EXPECT_GT(std::fabs(full.ntk_teacher(x.data()) - diag.ntk_teacher(x.data())), 1e-6);
}

// The anchors are the first R training inputs (an i.i.d. sample, the same for every n), so a
// seed's teacher does not change with the data-set size.
TEST(TeacherStudentNtk, AnchorsAreTheFirstTrainingInputsAndTheTeacherDoesNotDependOnN) {
  TaskConfig c = small_config();
  c.anchors = 6;
  TeacherStudentTask t(c, 3);
  ASSERT_EQ(t.anchor_inputs().size(), 6u);
  for (int r = 0; r < 6; ++r) {
    EXPECT_EQ(t.anchor_inputs()[size_t(r)].first, Split::train);
    EXPECT_EQ(t.anchor_inputs()[size_t(r)].second, r);
  }
  double l1 = 0;
  for (double b : t.anchor_weights()) l1 += std::fabs(b);
  EXPECT_NEAR(l1, 1.0, 1e-12);
  TaskConfig big = c;
  big.n_train = 60;
  big.n_val = 30;
  TeacherStudentTask tb(big, 3);
  std::vector<float> x(size_t(c.seq_len) * c.d_in);
  t.inputs(Split::val, 2, x.data());
  EXPECT_EQ(t.ntk_teacher(x.data()), tb.ntk_teacher(x.data()));
  c.anchors = 7;
  try {
    TeacherStudentTask bad(c, 3);
    ADD_FAILURE() << "7 anchors from 6 training inputs";
  } catch (const UserError& e) {
    EXPECT_STREQ(e.what(), "task.anchors: 7 anchors need at least as many training inputs, but n_train = 6");
  }
}

TEST(TeacherStudentNtk, TokensHaveNormAtMostOne) {
  TaskConfig c = small_config();
  c.d_in = 8;
  c.seq_len = 16;
  TeacherStudentTask t(c, 2);
  std::vector<float> x(16 * 8);
  int unit = 0;
  for (int64_t i = 0; i < 6; ++i) {
    t.inputs(Split::train, i, x.data());
    for (int s = 0; s < 16; ++s) {
      double n2 = 0;
      for (int k = 0; k < 8; ++k) n2 += double(x[size_t(s) * 8 + k]) * x[size_t(s) * 8 + k];
      EXPECT_LE(std::sqrt(n2), 1.0 + 1e-6);
      unit += std::fabs(std::sqrt(n2) - 1.0) < 1e-6;
    }
  }
  EXPECT_GT(unit, 80);  // for d = 8 nearly every N(0, I) token has norm > 1 and is rescaled
}

TEST(TeacherStudentNtk, NuKeyTakesOneOrThreeNumbersAndDefaultsToTheAuthors) {
  const std::string base = "[task]\nkind = \"teacher_student_ntk\"\nd = 3\nseq_len = 5\nn = 40\n";
  const std::string model = "[model]\nkind = \"shallow_attention\"\nwidth = 4\n";
  const RunConfig def = parse_run_config(base + model, "t.toml", {});
  EXPECT_EQ(def.task.nu, (std::vector<double>{3.0, 3.0, 3.0}));
  EXPECT_EQ(def.task.anchors, 16);
  EXPECT_EQ(def.task.teacher_samples, 8192);
  EXPECT_EQ(def.task.teacher_w, "full");
  EXPECT_EQ(parse_run_config(base + "nu = 2.5\n" + model, "t.toml", {}).task.nu, (std::vector<double>{2.5, 2.5, 2.5}));
  EXPECT_EQ(parse_run_config(base + "nu = [1, 2, 3]\nteacher_w = \"diagonal\"\n" + model, "t.toml", {}).task.teacher_w,
            "diagonal");
  try {
    parse_run_config(base + "nu = [1, 2]\n" + model, "t.toml", {});
    ADD_FAILURE() << "two numbers accepted";
  } catch (const UserError& e) {
    EXPECT_STREQ(e.what(), "t.toml: task.nu: expected a number or a list of three numbers [nu_c, nu_u, nu_w]");
  }
}
