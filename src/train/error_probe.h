#pragma once
// Paper 3's error decomposition, as functions of the width m (E2, E3):
//  - approximation error: |f_lin,m(X) - f*(X)|, f_lin,m the m-head transport predictor built on
//    the student's initial heads, f* the NTK teacher (task teacher_student_ntk);
//  - linearization error: |f(theta0 + Delta)(X) - f(theta0)(X) - <grad f(theta0)(X), Delta>|
//    with Delta on the boundary of every head's projection ball, aligned with the gradient:
//    Delta_{i,g} = (rho_g / sqrt m) grad_{i,g} f / ||grad_{i,g} f||.
// Both are reported as max and mean over validation inputs.
#include <string>
#include <vector>

#include "core/run_config.h"

namespace attnlab {

struct ErrorPoint {
  int m = 0;
  double approx_max = 0, approx_mean = 0, lin_max = 0, lin_mean = 0;
};

std::vector<ErrorPoint> p3_error_decomposition(const RunConfig& cfg, const std::vector<int>& widths, int inputs);

// Least-squares slope of log y against log x (NaN with fewer than two positive points).
double loglog_slope(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace attnlab
