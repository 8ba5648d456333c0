#pragma once
// Pointwise activations: gelu (exact, erf), relu, tanh.
#include <cmath>

namespace attnlab {

enum class Act { gelu, relu, tanh };

template <class T>
void act_forward(Act a, T* y, const T* x, size_t n) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) {
    const T v = x[i];
    switch (a) {
      case Act::gelu: y[i] = T(0.5) * v * (T(1) + std::erf(v * T(0.70710678118654752))); break;
      case Act::relu: y[i] = v > T(0) ? v : T(0); break;
      case Act::tanh: y[i] = std::tanh(v); break;
    }
  }
}

// dx += dy * act'(x)
template <class T>
void act_backward(Act a, T* dx, const T* dy, const T* x, size_t n) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) {
    const T v = x[i];
    T d = 0;
    switch (a) {
      case Act::gelu: {
        const T cdf = T(0.5) * (T(1) + std::erf(v * T(0.70710678118654752)));
        const T pdf = T(0.39894228040143268) * std::exp(T(-0.5) * v * v);
        d = cdf + v * pdf;
        break;
      }
      case Act::relu: d = v > T(0) ? T(1) : T(0); break;
      case Act::tanh: {
        const T t = std::tanh(v);
        d = T(1) - t * t;
        break;
      }
    }
    dx[i] += dy[i] * d;
  }
}

}  // namespace attnlab
