#pragma once
// Vectorizable exp and tanh for float (Cephes' expf polynomial, relative error ~1e-7): the
// libm calls do not vectorize and were 20% of a shallow-attention step. Double precision
// (used by the gradient checks) goes to libm.
#include <cmath>
#include <cstdint>

namespace attnlab {

// Cephes' expf polynomial: e^r for |r| <= ln2/2, for float or a float vector type.
template <class V>
inline V exp_poly(V r) {
  const V z = r * r;
  V y = r * 1.9875691500e-4f + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  return y * z + r + 1.0f;
}

// Vectorizes only where the file is compiled with -ffinite-math-only -fno-signed-zeros
// -fno-trapping-math (set per file in CMakeLists.txt): GCC then turns the clamps into
// vmaxps/vminps and the selects into blends (check with -fopt-info-vec). std::floor would
// block vectorization, so floor is a truncation with a branch-free correction.
// Below -87 it returns exactly 0 (masked scores are -inf): the clamped value, ~1e-38, made
// products in the attention GEMMs denormal, and every denormal costs a microcode assist.
inline float fast_exp(float x) {
  const bool under = x < -87.0f;
  x = under ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float u = x * 1.44269504088896341f + 0.5f;
  float n = float(int32_t(u));
  n = n > u ? n - 1.0f : n;  // floor(u)
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  const float y = exp_poly(r);
  const int32_t e = (int32_t(n) + 127) << 23;
  float s;
  __builtin_memcpy(&s, &e, 4);
  return under ? 0.0f : y * s;
}
inline double fast_exp(double x) { return std::exp(x); }

// tanh(x) = sign(x) (1 - 2 / (exp(2|x|) + 1)); absolute error ~1e-7.
inline float fast_tanh(float x) {
  const float a = std::fabs(x);
  const float t = 1.0f - 2.0f / (fast_exp(2.0f * a) + 1.0f);
  return x < 0 ? -t : t;
}
inline double fast_tanh(double x) { return std::tanh(x); }

// erf (Abramowitz & Stegun 7.1.26, absolute error <= 1.5e-7), vectorizable like fast_exp.
inline float fast_erf(float x) {
  const float a = std::fabs(x);
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  const float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
  const float r = 1.0f - poly * fast_exp(-a * a);
  return x < 0 ? -r : r;
}
inline double fast_erf(double x) { return std::erf(x); }

}  // namespace attnlab
