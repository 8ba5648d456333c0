#pragma once
// LayerNorm and RMSNorm over the last dimension C of [N, C], eps = 1e-5. Rows are reduced in
// the model's precision T (two passes over a row held in L1; float rows of C <= 4096 keep
// ~1e-6 relative error), so that the loops vectorize: the double accumulation they replaced
// made the norms the slowest pointwise pass of a step.
#include <omp.h>

#include <cmath>
#include <vector>

#include "kernels/grad_mode.h"

namespace attnlab {

constexpr double kNormEps = 1e-5;

namespace detail {
// Per-thread partial sums of the norm-parameter gradients, [threads, k*C], zeroed; added up in
// thread order afterwards (deterministic for a fixed thread count). Reused across calls.
template <class T>
T* norm_partials(int k, int C) {
  static thread_local std::vector<T> part;
  part.assign(size_t(omp_get_max_threads()) * k * C, T(0));
  return part.data();
}
template <class T>
void add_partials(T* dst, const T* part, int k, int which, int C) {
  for (int t = 0; t < omp_get_max_threads(); ++t)
    for (int c = 0; c < C; ++c) dst[c] += part[(size_t(t) * k + which) * C + c];
}
}  // namespace detail

// out = (x - mean) * rstd * w + b;  saves mean[N], rstd[N]
template <class T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* x, const T* w, const T* b, int N, int C) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const T* xr = x + size_t(n) * C;
    T* orow = out + size_t(n) * C;
    T m = 0;
#pragma omp simd reduction(+ : m)
    for (int c = 0; c < C; ++c) m += xr[c];
    m /= T(C);
    T v = 0;
#pragma omp simd reduction(+ : v)
    for (int c = 0; c < C; ++c) v += (xr[c] - m) * (xr[c] - m);
    v /= T(C);
    const T rs = T(1) / std::sqrt(v + T(kNormEps));
#pragma omp simd
    for (int c = 0; c < C; ++c) orow[c] = (xr[c] - m) * rs * w[c] + b[c];
    mean[n] = m;
    rstd[n] = rs;
  }
}

// dx[N,C] (+)= ..., dw[C] += ..., db[C] += ...: one pass over the rows, the parameter
// gradients in per-thread partials.
template <class T>
void layernorm_backward(T* dx, T* dw, T* db, const T* dout, const T* x, const T* w, const T* mean,
                        const T* rstd, int N, int C, GradMode dx_mode = GradMode::add) {
  T* part = detail::norm_partials<T>(2, C);
#pragma omp parallel
  {
    T* pw = part + size_t(omp_get_thread_num()) * 2 * C;
    T* pb = pw + C;
#pragma omp for schedule(static)
    for (int n = 0; n < N; ++n) {
      const T* xr = x + size_t(n) * C;
      const T* g = dout + size_t(n) * C;
      T* d = dx + size_t(n) * C;
      const T mn = mean[n], rs = rstd[n];
      T sg = 0, sgx = 0;
#pragma omp simd reduction(+ : sg, sgx)
      for (int c = 0; c < C; ++c) {
        const T xh = (xr[c] - mn) * rs;
        const T gw = g[c] * w[c];
        sg += gw;
        sgx += gw * xh;
        pw[c] += g[c] * xh;
        pb[c] += g[c];
      }
      sg /= T(C);
      sgx /= T(C);
      if (dx_mode == GradMode::add) {
#pragma omp simd
        for (int c = 0; c < C; ++c) d[c] += rs * (g[c] * w[c] - sg - (xr[c] - mn) * rs * sgx);
      } else {
#pragma omp simd
        for (int c = 0; c < C; ++c) d[c] = rs * (g[c] * w[c] - sg - (xr[c] - mn) * rs * sgx);
      }
    }
  }
  detail::add_partials(dw, part, 2, 0, C);
  detail::add_partials(db, part, 2, 1, C);
}

// out = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps)
template <class T>
void rmsnorm_forward(T* out, T* rstd, const T* x, const T* w, int N, int C) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const T* xr = x + size_t(n) * C;
    T s = 0;
#pragma omp simd reduction(+ : s)
    for (int c = 0; c < C; ++c) s += xr[c] * xr[c];
    const T rs = T(1) / std::sqrt(s / T(C) + T(kNormEps));
#pragma omp simd
    for (int c = 0; c < C; ++c) out[size_t(n) * C + c] = xr[c] * rs * w[c];
    rstd[n] = rs;
  }
}

template <class T>
void rmsnorm_backward(T* dx, T* dw, const T* dout, const T* x, const T* w, const T* rstd, int N, int C,
                      GradMode dx_mode = GradMode::add) {
  T* part = detail::norm_partials<T>(1, C);
#pragma omp parallel
  {
    T* pw = part + size_t(omp_get_thread_num()) * C;
#pragma omp for schedule(static)
    for (int n = 0; n < N; ++n) {
      const T* xr = x + size_t(n) * C;
      const T* g = dout + size_t(n) * C;
      T* d = dx + size_t(n) * C;
      const T rs = rstd[n];
      T sgx = 0;
#pragma omp simd reduction(+ : sgx)
      for (int c = 0; c < C; ++c) {
        sgx += g[c] * w[c] * xr[c];
        pw[c] += g[c] * xr[c] * rs;
      }
      const T k = sgx * rs * rs * rs / T(C);
      if (dx_mode == GradMode::add) {
#pragma omp simd
        for (int c = 0; c < C; ++c) d[c] += g[c] * w[c] * rs - xr[c] * k;
      } else {
#pragma omp simd
        for (int c = 0; c < C; ++c) d[c] = g[c] * w[c] * rs - xr[c] * k;
      }
    }
  }
  detail::add_partials(dw, part, 1, 0, C);
}

}  // namespace attnlab
