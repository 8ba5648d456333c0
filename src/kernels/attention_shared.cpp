// DP-free attention shared by the batch (attention_shared.h). Forward and backward:
//   P[t, s] = exp(bias[t - s] - lse_t), s <= t   (one [T, T] table per head)
//   O' = P V'            with V' [T, B*dv]: column b*dv + j is v[b, :, h*dv + j]
//   dV' = P^T dO',  dP = dO' V'^T,  D_t = sum_c dO'[t, c] O'[t, c]
//   dS = P (.) (dP - D),  dbias[n] += sum_{t - s = n} dS[t, s]
#include "kernels/attention_shared.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "kernels/fast_math.h"
#include "kernels/gemm.h"

namespace attnlab::detail {

namespace {

// P [T, T] (zero above the diagonal) and lse [T] of one head.
template <class T>
void shared_softmax(T* P, T* lse, const T* bt, int Tn) {
#pragma omp parallel for schedule(dynamic, 16)
  for (int t = 0; t < Tn; ++t) {
    T* row = P + size_t(t) * Tn;
    T mx = bt ? bt[0] : T(0);
    if (bt)
      for (int n = 1; n <= t; ++n) mx = std::max(mx, bt[n]);
    T sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int s = 0; s <= t; ++s) {
      row[s] = bt ? fast_exp(bt[t - s] - mx) : T(1);
      sum += row[s];
    }
    const T inv = T(1) / sum;
    for (int s = 0; s <= t; ++s) row[s] *= inv;
    std::fill(row + t + 1, row + Tn, T(0));
    lse[t] = mx + std::log(sum);
  }
}

// X' [T, B*dv] <- x[b, t, h*dv + j] (row stride ld), and back (with a GradMode).
template <class T>
void pack(T* dst, const T* src, int B, int Tn, int dv, int ld, int h) {
#pragma omp parallel for
  for (int t = 0; t < Tn; ++t)
    for (int b = 0; b < B; ++b) {
      const T* s = src + (size_t(b) * Tn + t) * ld + size_t(h) * dv;
      std::copy(s, s + dv, dst + size_t(t) * B * dv + size_t(b) * dv);
    }
}

template <class T>
void unpack(T* dst, const T* src, int B, int Tn, int dv, int ld, int h, GradMode mode) {
#pragma omp parallel for
  for (int t = 0; t < Tn; ++t)
    for (int b = 0; b < B; ++b) {
      T* d = dst + (size_t(b) * Tn + t) * ld + size_t(h) * dv;
      const T* s = src + size_t(t) * B * dv + size_t(b) * dv;
      if (mode == GradMode::add)
        for (int j = 0; j < dv; ++j) d[j] += s[j];
      else
        for (int j = 0; j < dv; ++j) d[j] = s[j];
    }
}

}  // namespace

template <class T>
void attention_forward_shared(T* o, T* lse, const T* v, const T* bias, const AttnDims& d, std::vector<T>& work) {
  const int Tn = d.T, H = d.H, dv = d.dv, B = d.B, N = B * dv;
  const int vin = d.v_stride(), vs = H * dv;
  const size_t need = size_t(Tn) * Tn + 2 * size_t(Tn) * N + size_t(Tn);
  if (work.size() < need) work.resize(need);
  T* P = work.data();
  T* Vp = P + size_t(Tn) * Tn;
  T* Op = Vp + size_t(Tn) * N;
  T* l = Op + size_t(Tn) * N;
  for (int h = 0; h < H; ++h) {
    shared_softmax(P, l, bias ? bias + size_t(h) * Tn : nullptr, Tn);
    pack(Vp, v, B, Tn, dv, vin, h);
    gemm(false, false, Tn, N, Tn, T(1), P, Tn, Vp, N, T(0), Op, N);
    unpack(o, Op, B, Tn, dv, vs, h, GradMode::set);
    for (int b = 0; b < B; ++b) std::copy(l, l + Tn, lse + (size_t(b) * H + h) * Tn);
  }
}

template <class T>
void attention_backward_shared(T* dvv, T* dbias, const T* dout, const T* o, const T* v, const T* bias, const AttnDims& d,
                               std::vector<T>& work, GradMode mode) {
  const int Tn = d.T, H = d.H, dv = d.dv, B = d.B, N = B * dv;
  const int vin = d.v_stride(), vs = H * dv;
  const size_t need = 2 * size_t(Tn) * Tn + 4 * size_t(Tn) * N + 2 * size_t(Tn);
  if (work.size() < need) work.resize(need);
  T* P = work.data();
  T* dP = P + size_t(Tn) * Tn;
  T* Vp = dP + size_t(Tn) * Tn;
  T* dOp = Vp + size_t(Tn) * N;
  T* Op = dOp + size_t(Tn) * N;
  T* dVp = Op + size_t(Tn) * N;
  T* l = dVp + size_t(Tn) * N;
  T* D = l + Tn;
  for (int h = 0; h < H; ++h) {
    const T* bt = bias ? bias + size_t(h) * Tn : nullptr;
    shared_softmax(P, l, bt, Tn);
    pack(Vp, v, B, Tn, dv, vin, h);
    pack(dOp, dout, B, Tn, dv, vs, h);
    pack(Op, o, B, Tn, dv, vs, h);
    gemm(true, false, Tn, N, Tn, T(1), P, Tn, dOp, N, T(0), dVp, N);  // dV' = P^T dO'
    unpack(dvv, dVp, B, Tn, dv, vin, h, mode);
    if (!dbias) continue;
    gemm(false, true, Tn, Tn, N, T(1), dOp, N, Vp, N, T(0), dP, Tn);  // dP = dO' V'^T
#pragma omp parallel for
    for (int t = 0; t < Tn; ++t) {
      T s = 0;
      for (int c = 0; c < N; ++c) s += dOp[size_t(t) * N + c] * Op[size_t(t) * N + c];
      D[t] = s;
    }
    // dbias[n] = sum_t dS[t, t - n]: each thread sums whole diagonals.
#pragma omp parallel for schedule(dynamic, 16)
    for (int n = 0; n < Tn; ++n) {
      T s = 0;
      for (int t = n; t < Tn; ++t) {
        const size_t at = size_t(t) * Tn + size_t(t - n);
        s += P[at] * (dP[at] - D[t]);
      }
      dbias[size_t(h) * Tn + n] += s;
    }
  }
}

template void attention_forward_shared<float>(float*, float*, const float*, const float*, const AttnDims&, std::vector<float>&);
template void attention_forward_shared<double>(double*, double*, const double*, const double*, const AttnDims&,
                                               std::vector<double>&);
template void attention_backward_shared<float>(float*, float*, const float*, const float*, const float*, const float*,
                                               const AttnDims&, std::vector<float>&, GradMode);
template void attention_backward_shared<double>(double*, double*, const double*, const double*, const double*,
                                                const double*, const AttnDims&, std::vector<double>&, GradMode);

}  // namespace attnlab::detail
