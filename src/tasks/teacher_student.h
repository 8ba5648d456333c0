#pragma once
// Teacher-student tasks of paper 3. Tokens x_t ~ N(0, I_d), each rescaled by min(1, 1/||x_t||);
// one scalar target per sequence.
//  - `teacher_student_model`: y = f_teacher(X), a random shallow_attention model of width
//    teacher_width with i.i.d. initialization (tanh).
//  - `teacher_student_ntk`: a teacher in the tangent-kernel space of the model at
//    initialization (the authors' construction, ../shared/papers/p3_authors_setup.md). For a
//    draw phi = (W, U) of the initialization, s = U^T a, a = X softmax(X^T W x_T) = sum_t alpha_t x_t:
//      phi_c = sigma(s), phi_u = sigma'(s) a, phi_w = sigma'(s) (sum_t alpha_t x_t x_t^T - a a^T) U x_T^T.
//    The transport map over R anchors X_r (the first R training inputs: i.i.d., so a random
//    sample of the inputs, and the same for every n) with
//    weights beta ~ N(0, I_R) rescaled to ||beta||_1 = 1 is
//      v_c = nu_c sum_r beta_r phi_c(X_r), v_u = nu_u sum_r beta_r phi_u(X_r),
//      v_w = sum_r beta_r clip(phi_w(X_r), nu_w)   (clip: rescale to Frobenius norm <= nu_w),
//    and f*(X) = E_phi[phi_c v_c + <phi_u, v_u> + <phi_w, v_w>_F], a Monte Carlo mean over
//    teacher_samples draws. sigma = tanh. teacher_w = "diagonal" computes the scores with
//    diag(W) x_T in place of W x_T (the authors' code does, through a repeated einsum index).
// The targets of all splits are computed once, at construction.
#include "tasks/task.h"
#include "io/config_keys.h"

namespace attnlab {

class TeacherStudentTask : public Task {
 public:
  TeacherStudentTask(const TaskConfig& cfg, uint64_t seed);
  int d_in() const override { return cfg_.d_in; }
  int d_out() const override { return 1; }
  bool last_only() const override { return true; }
  void fill(Split split, const int64_t* indices, int B, Batch& batch) const override;
  // The normalized tokens of sample `index` of `split` ([T, d]).
  void inputs(Split split, int64_t index, float* x) const;
  // The NTK teacher at one input; valid for kind teacher_student_ntk.
  double ntk_teacher(const float* x) const;
  // |f_lin,m(x_b) - fstar_b| for n inputs x [n, T, d], where f_lin,m is the m-head transport
  // predictor (1/m) sum_i <phi(x; W_i, U_i), v(W_i, U_i)>: the teacher's Monte Carlo estimate
  // with the given draws (W [m, d, d], U [m, d]), e.g. a student's initial heads. Against the
  // teacher's values, this is the approximation error (E2).
  std::vector<double> transport_predictor_errors(const float* x, const double* fstar, int64_t n, const double* W,
                                                 const double* U, int m) const;
  // The label of sample `index` of `split` (the teacher's value there).
  float target(Split split, int64_t index) const { return targets_[int(split)][size_t(index)]; }
  // The construction, for tests: the anchors as (split, index) of the inputs, their weights,
  // and the teacher's draws W [M, d, d], U [M, d].
  const std::vector<std::pair<Split, int64_t>>& anchor_inputs() const { return anchor_refs_; }
  const std::vector<double>& anchor_weights() const { return beta_; }
  const std::vector<double>& draws_W() const { return W_; }
  const std::vector<double>& draws_U() const { return U_; }

 private:
  void build_ntk();
  void transport(const double* W, const double* U, double* vc, double* vu, double* vw) const;
  double kernel_term(const float* x, const double* W, const double* U, double vc, const double* vu,
                     const double* vw) const;
  TaskConfig cfg_;
  uint64_t seed_;
  std::vector<float> targets_[3];
  // NTK teacher: draws (W [M,d,d], U [M,d]) and the transport map at each draw.
  std::vector<double> W_, U_, vc_, vu_, vw_, beta_;
  typedef double v8d __attribute__((vector_size(64)));
  static constexpr int kDrawLanes = 8;
  std::vector<v8d> blocks_;  // the draws and their transport map, kDrawLanes draws per block
  std::vector<float> anchors_;
  std::vector<std::pair<Split, int64_t>> anchor_refs_;
};

// Their own config keys: task.d_in (or task.d), and anchors, nu, teacher_w, teacher_samples (ntk) or
// teacher_width (model); d_out = 1.
void teacher_student_ntk_keys(Keys& k, TaskConfig& c);
void teacher_student_model_keys(Keys& k, TaskConfig& c);

}  // namespace attnlab
