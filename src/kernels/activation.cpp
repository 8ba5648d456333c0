// Compiled with -ffinite-math-only -fno-signed-zeros (CMakeLists.txt) so that the clamps and
// sign selections of fast_math.h vectorize.
#include "kernels/activation.h"

#include <cmath>

#include "kernels/fast_math.h"

namespace attnlab {

template <class T>
void act_forward(Act a, T* y, const T* x, size_t n) {
  switch (a) {
    case Act::gelu:
#pragma omp parallel for simd schedule(static)
      for (size_t i = 0; i < n; ++i) y[i] = T(0.5) * x[i] * (T(1) + fast_erf(x[i] * T(0.70710678118654752)));
      break;
    case Act::relu:
#pragma omp parallel for simd schedule(static)
      for (size_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
      break;
    case Act::tanh:
#pragma omp parallel for simd schedule(static)
      for (size_t i = 0; i < n; ++i) y[i] = fast_tanh(x[i]);
      break;
  }
}

namespace {
// dx[i] (+)= f(i), in one vectorized pass for either mode.
template <class T, class F>
inline void write_grad(T* dx, size_t n, GradMode mode, F f) {
  if (mode == GradMode::add) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; ++i) dx[i] += f(i);
  } else {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; ++i) dx[i] = f(i);
  }
}
}  // namespace

template <class T>
void act_backward(Act a, T* dx, const T* dy, const T* x, size_t n, GradMode mode) {
  switch (a) {
    case Act::gelu:
      write_grad(dx, n, mode, [=](size_t i) {
        const T v = x[i];
        const T cdf = T(0.5) * (T(1) + fast_erf(v * T(0.70710678118654752)));
        const T pdf = T(0.39894228040143268) * fast_exp(T(-0.5) * v * v);
        return dy[i] * (cdf + v * pdf);
      });
      break;
    case Act::relu:
      write_grad(dx, n, mode, [=](size_t i) { return x[i] > T(0) ? dy[i] : T(0); });
      break;
    case Act::tanh:
      write_grad(dx, n, mode, [=](size_t i) {
        const T t = fast_tanh(x[i]);
        return dy[i] * (T(1) - t * t);
      });
      break;
  }
}

template void act_forward<float>(Act, float*, const float*, size_t);
template void act_forward<double>(Act, double*, const double*, size_t);
template void act_backward<float>(Act, float*, const float*, const float*, size_t, GradMode);
template void act_backward<double>(Act, double*, const double*, const double*, size_t, GradMode);

}  // namespace attnlab
