#pragma once
// Paper 3's error decomposition, as functions of the width m (E2, E3):
//  - approximation error: |f_lin,m(X) - f*(X)|, f_lin,m the m-head transport predictor built on
//    the student's initial heads, f* the NTK teacher (task teacher_student_ntk);
//  - linearization error: |f(theta0 + Delta)(X) - f(theta0)(X) - <grad f(theta0)(X), Delta>|
//    with one Delta for the data set on the boundary of every head's projection ball, as the
//    authors build it: dU_i, dW_i along the gradient of sum_b h_i(X_b) with lengths
//    rho_u / sqrt m, rho_w / sqrt m, and dc_i = +rho_c / sqrt m.
// Both are reported as max and mean over the inputs: the first `inputs` training inputs, then
// validation inputs; inputs <= 0 takes all n (the authors: E2's metric is the max, E3's the mean).
#include <string>
#include <vector>

#include "core/run_config.h"

namespace attnlab {

struct ErrorPoint {
  int m = 0;
  double approx_max = 0, approx_mean = 0, lin_max = 0, lin_mean = 0;
};

// `built`: the run's task, if it has been built (its labels are the teacher's values there;
// building another costs the teacher's Monte Carlo sums again).
class TeacherStudentTask;
std::vector<ErrorPoint> p3_error_decomposition(const RunConfig& cfg, const std::vector<int>& widths, int64_t inputs = 0,
                                               const TeacherStudentTask* built = nullptr);

// Least-squares slope of log y against log x (NaN with fewer than two positive points).
double loglog_slope(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace attnlab
