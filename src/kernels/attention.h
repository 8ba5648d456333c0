#pragma once
// Causal multi-head attention over projected q, k, v (reference kernel).
//   q, k: [B, T, H*dk]  v: [B, T, H*dv]  o: [B, T, H*dv]   head h = columns h*d .. (h+1)*d-1
//   s[t, s'] = scale * <q_t, k_s'> (if dot_product) + bias[h][t - s'],  s' <= t
//   P = softmax(s) over s' <= t,  o_t = sum_s' P[t, s'] v_s'
// The forward saves P [B, H, T, T] for the backward. This O(T^2)-memory kernel is the
// reference: a fused, memory-lean kernel replaces it behind the same two functions.
// Note: when dot_product is false, q and k may be null (the layer has no q/k parameters).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/gemm.h"

namespace attnlab {

struct AttnDims {
  int B = 0, T = 0, H = 0, dk = 0, dv = 0;
  double scale = 1.0;
  bool dot_product = true;
};

// bias: [H, T] table (or nullptr for none). P: [B, H, T, T] saved probabilities.
// Per (b, h), threads over (b, h): S = scale Q K^T and O = P V are GEMMs (OpenBLAS runs them
// single-threaded inside our parallel loop); the causal upper triangle is computed and then
// masked, which costs 2x in the score GEMM but beats scalar loops by far (bench: see README).
template <class T>
void attention_forward(T* o, T* P, const T* q, const T* k, const T* v, const T* bias, const AttnDims& d) {
  const int Tn = d.T, H = d.H, dk = d.dk, dv = d.dv;
  const int qs = H * dk, vs = H * dv;
#pragma omp parallel for schedule(static)
  for (int bh = 0; bh < d.B * H; ++bh) {
    const int b = bh / H, h = bh % H;
    const T* qb = q + size_t(b) * Tn * qs + size_t(h) * dk;
    const T* kb = k + size_t(b) * Tn * qs + size_t(h) * dk;
    const T* vb = v + size_t(b) * Tn * vs + size_t(h) * dv;
    T* ob = o + size_t(b) * Tn * vs + size_t(h) * dv;
    T* S = P + size_t(bh) * Tn * Tn;
    const T* bt = bias ? bias + size_t(h) * Tn : nullptr;
    if (d.dot_product) gemm(false, true, Tn, Tn, dk, T(d.scale), qb, qs, kb, qs, T(0), S, Tn);
    for (int t = 0; t < Tn; ++t) {
      T* p = S + size_t(t) * Tn;
      T mx = -INFINITY;
      for (int s = 0; s <= t; ++s) {
        T sc = d.dot_product ? p[s] : T(0);
        if (bt) sc += bt[t - s];
        p[s] = sc;
        mx = std::max(mx, sc);
      }
      T sum = 0;
      for (int s = 0; s <= t; ++s) {
        p[s] = std::exp(p[s] - mx);
        sum += p[s];
      }
      const T inv = T(1) / sum;
      for (int s = 0; s <= t; ++s) p[s] *= inv;
      for (int s = t + 1; s < Tn; ++s) p[s] = 0;
    }
    gemm(false, false, Tn, dv, Tn, T(1), S, Tn, vb, vs, T(0), ob, vs);
  }
}

// dq, dk, dv += ...; dbias [H, T] += gradient of the bias table (may be nullptr).
// work: scratch, resized here to B*H*T (per-(b,h) bias gradients, reduced in a fixed order)
// plus T*T per thread (dP, then dS); kept by the caller so that no step allocates.
//   dP = dO V^T;  dV += P^T dO;  dS = P (.) (dP - rowsum(P (.) dP));  dQ += s dS K;  dK += s dS^T Q
template <class T>
void attention_backward(T* dq, T* dkk, T* dvv, T* dbias, const T* dout, const T* P, const T* q, const T* k, const T* v,
                        const AttnDims& d, std::vector<T>& work) {
  const int Tn = d.T, H = d.H, dk = d.dk, dv = d.dv;
  const int qs = H * dk, vs = H * dv;
  const size_t nb = size_t(d.B) * H * Tn, tt = size_t(Tn) * Tn;
  work.resize(nb + size_t(omp_get_max_threads()) * tt);
  if (dbias) std::fill(work.begin(), work.begin() + std::ptrdiff_t(nb), T(0));
#pragma omp parallel
  {
    T* dS = work.data() + nb + size_t(omp_get_thread_num()) * tt;
#pragma omp for schedule(static)
    for (int bh = 0; bh < d.B * H; ++bh) {
      const int b = bh / H, h = bh % H;
      const size_t qo = size_t(b) * Tn * qs + size_t(h) * dk;
      const size_t vo = size_t(b) * Tn * vs + size_t(h) * dv;
      const T* Pb = P + size_t(bh) * Tn * Tn;
      T* wb = dbias ? work.data() + size_t(bh) * Tn : nullptr;
      gemm(false, true, Tn, Tn, dv, T(1), dout + vo, vs, v + vo, vs, T(0), dS, Tn);             // dP
      gemm(true, false, Tn, dv, Tn, T(1), Pb, Tn, dout + vo, vs, T(1), dvv + vo, vs);          // dV
      for (int t = 0; t < Tn; ++t) {
        const T* p = Pb + size_t(t) * Tn;
        T* g = dS + size_t(t) * Tn;
        T D = 0;
        for (int s = 0; s <= t; ++s) D += p[s] * g[s];
        for (int s = 0; s <= t; ++s) g[s] = p[s] * (g[s] - D);
        for (int s = t + 1; s < Tn; ++s) g[s] = 0;
        if (wb)
          for (int s = 0; s <= t; ++s) wb[t - s] += g[s];
      }
      if (d.dot_product) {
        gemm(false, false, Tn, dk, Tn, T(d.scale), dS, Tn, k + qo, qs, T(1), dq + qo, qs);   // dQ
        gemm(true, false, Tn, dk, Tn, T(d.scale), dS, Tn, q + qo, qs, T(1), dkk + qo, qs);  // dK
      }
    }
  }
  if (dbias)
    for (int b = 0; b < d.B; ++b)
      for (int h = 0; h < H; ++h)
        for (int n = 0; n < Tn; ++n) dbias[h * Tn + n] += work[(size_t(b) * H + h) * Tn + n];
}

}  // namespace attnlab
