#pragma once
// Linear layer y = x W^T + b (PyTorch layout: W is [out, in]). Backward accumulates (+=)
// into every parameter gradient it is given, and adds into or sets dx (GradMode); pass
// nullptr to skip one.
#include <vector>

#include "kernels/gemm.h"
#include "kernels/grad_mode.h"

namespace attnlab {

// y[N,out] = x[N,in] W[out,in]^T + b[out] (+ residual[N,out], which may not alias y). Bias and
// residual are written first and the GEMM accumulates onto them: one pass over y, not three.
template <class T>
void linear_forward(T* y, const T* x, const T* W, const T* b, int N, int in, int out, const T* residual = nullptr) {
  if (b || residual) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
      T* yr = y + size_t(n) * out;
      const T* rr = residual ? residual + size_t(n) * out : nullptr;
      if (b && rr)
        for (int o = 0; o < out; ++o) yr[o] = b[o] + rr[o];
      else if (b)
        for (int o = 0; o < out; ++o) yr[o] = b[o];
      else
        for (int o = 0; o < out; ++o) yr[o] = rr[o];
    }
  }
  gemm(false, true, N, out, in, T(1), x, in, W, in, (b || residual) ? T(1) : T(0), y, out);
}

// db[out] += sum over rows of dy[N, out], as a GEMV with a ones vector (threaded by OpenBLAS;
// the serial loop was a measurable part of the 2-thread step).
template <class T>
void gemv_colsum(T* db, const T* dy, int N, int out) {
  static thread_local std::vector<T> ones;
  if (int(ones.size()) < N) ones.assign(size_t(N), T(1));
  gemv(true, N, out, T(1), dy, out, ones.data(), T(1), db);
}

// dx[N,in] (+)= dy W;  dW[out,in] += dy^T x;  db[out] += sum_n dy
template <class T>
void linear_backward(T* dx, T* dW, T* db, const T* dy, const T* x, const T* W, int N, int in, int out,
                     GradMode dx_mode = GradMode::add) {
  if (dx) gemm(false, false, N, in, out, T(1), dy, out, W, in, dx_mode == GradMode::add ? T(1) : T(0), dx, in);
  if (dW) gemm(true, false, out, in, N, T(1), dy, out, x, in, T(1), dW, in);
  if (db) gemv_colsum(db, dy, N, out);
}

}  // namespace attnlab
