#pragma once
// LayerNorm and RMSNorm over the last dimension C of [N, C], eps = 1e-5.
#include <omp.h>

#include <cmath>
#include <vector>

namespace attnlab {

constexpr double kNormEps = 1e-5;

// out = (x - mean) * rstd * w + b;  saves mean[N], rstd[N]
template <class T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* x, const T* w, const T* b, int N, int C) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const T* xr = x + size_t(n) * C;
    T* orow = out + size_t(n) * C;
    double m = 0;
    for (int c = 0; c < C; ++c) m += xr[c];
    m /= C;
    double v = 0;
    for (int c = 0; c < C; ++c) v += (xr[c] - m) * (xr[c] - m);
    v /= C;
    const double rs = 1.0 / std::sqrt(v + kNormEps);
    for (int c = 0; c < C; ++c) orow[c] = T((xr[c] - m) * rs) * w[c] + b[c];
    mean[n] = T(m);
    rstd[n] = T(rs);
  }
}

// dx[N,C] += ..., dw[C] += ..., db[C] += ...
template <class T>
void layernorm_backward(T* dx, T* dw, T* db, const T* dout, const T* x, const T* w, const T* mean,
                        const T* rstd, int N, int C) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const T* xr = x + size_t(n) * C;
    const T* g = dout + size_t(n) * C;
    double sg = 0, sgx = 0;
    for (int c = 0; c < C; ++c) {
      const double xh = (xr[c] - mean[n]) * rstd[n];
      const double gw = double(g[c]) * w[c];
      sg += gw;
      sgx += gw * xh;
    }
    sg /= C;
    sgx /= C;
    T* d = dx + size_t(n) * C;
    for (int c = 0; c < C; ++c) {
      const double xh = (xr[c] - mean[n]) * rstd[n];
      d[c] += T(rstd[n] * (double(g[c]) * w[c] - sg - xh * sgx));
    }
  }
  // Parameter gradients: per-thread partial sums over a static split of the rows, added in
  // thread order (deterministic for a fixed thread count).
  const int nt = omp_get_max_threads();
  std::vector<T> part(size_t(nt) * 2 * C, T(0));
#pragma omp parallel
  {
    T* pw = part.data() + size_t(omp_get_thread_num()) * 2 * C;
    T* pb = pw + C;
#pragma omp for schedule(static)
    for (int n = 0; n < N; ++n) {
      const T* xr = x + size_t(n) * C;
      const T* g = dout + size_t(n) * C;
      const T mn = mean[n], rs = rstd[n];
      for (int c = 0; c < C; ++c) {
        pw[c] += g[c] * (xr[c] - mn) * rs;
        pb[c] += g[c];
      }
    }
  }
  for (int t = 0; t < nt; ++t)
    for (int c = 0; c < C; ++c) {
      dw[c] += part[(size_t(t) * 2) * C + c];
      db[c] += part[(size_t(t) * 2 + 1) * C + c];
    }
}

// out = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps)
template <class T>
void rmsnorm_forward(T* out, T* rstd, const T* x, const T* w, int N, int C) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const T* xr = x + size_t(n) * C;
    double s = 0;
    for (int c = 0; c < C; ++c) s += double(xr[c]) * xr[c];
    const double rs = 1.0 / std::sqrt(s / C + kNormEps);
    for (int c = 0; c < C; ++c) out[size_t(n) * C + c] = T(xr[c] * rs) * w[c];
    rstd[n] = T(rs);
  }
}

template <class T>
void rmsnorm_backward(T* dx, T* dw, const T* dout, const T* x, const T* w, const T* rstd, int N,
                      int C) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const T* xr = x + size_t(n) * C;
    const T* g = dout + size_t(n) * C;
    double sgx = 0;
    for (int c = 0; c < C; ++c) sgx += double(g[c]) * w[c] * xr[c];
    const double rs = rstd[n];
    const double k = sgx * rs * rs * rs / C;
    for (int c = 0; c < C; ++c) dx[size_t(n) * C + c] += T(double(g[c]) * w[c] * rs - xr[c] * k);
  }
  const int nt = omp_get_max_threads();
  std::vector<T> part(size_t(nt) * C, T(0));
#pragma omp parallel
  {
    T* pw = part.data() + size_t(omp_get_thread_num()) * C;
#pragma omp for schedule(static)
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < C; ++c) pw[c] += dout[size_t(n) * C + c] * x[size_t(n) * C + c] * rstd[n];
  }
  for (int t = 0; t < nt; ++t)
    for (int c = 0; c < C; ++c) dw[c] += part[size_t(t) * C + c];
}

}  // namespace attnlab
