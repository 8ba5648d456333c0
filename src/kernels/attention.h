#pragma once
// Causal multi-head attention over projected q, k, v (reference kernel).
//   q, k: [B, T, H*dk]  v: [B, T, H*dv]  o: [B, T, H*dv]   head h = columns h*d .. (h+1)*d-1
//   s[t, s'] = scale * <q_t, k_s'> (if dot_product) + bias[h][t - s'],  s' <= t
//   P = softmax(s) over s' <= t,  o_t = sum_s' P[t, s'] v_s'
// The forward saves P [B, H, T, T] for the backward. This O(T^2)-memory kernel is the
// reference: a fused, memory-lean kernel replaces it behind the same two functions.
#include <algorithm>
#include <cmath>
#include <vector>

namespace attnlab {

struct AttnDims {
  int B = 0, T = 0, H = 0, dk = 0, dv = 0;
  double scale = 1.0;
  bool dot_product = true;
};

// bias: [H, T] table (or nullptr for none). P: [B, H, T, T] saved probabilities.
template <class T>
void attention_forward(T* o, T* P, const T* q, const T* k, const T* v, const T* bias,
                       const AttnDims& d) {
  const int Tn = d.T, H = d.H, dk = d.dk, dv = d.dv;
  const size_t qs = size_t(H) * dk, vs = size_t(H) * dv;
#pragma omp parallel for schedule(static)
  for (int bh = 0; bh < d.B * H; ++bh) {
    const int b = bh / H, h = bh % H;
    const T* qb = q + size_t(b) * Tn * qs + size_t(h) * dk;
    const T* kb = k + size_t(b) * Tn * qs + size_t(h) * dk;
    const T* vb = v + size_t(b) * Tn * vs + size_t(h) * dv;
    T* ob = o + size_t(b) * Tn * vs + size_t(h) * dv;
    const T* bt = bias ? bias + size_t(h) * Tn : nullptr;
    for (int t = 0; t < Tn; ++t) {
      T* p = P + (size_t(bh) * Tn + t) * Tn;
      T mx = -INFINITY;
      for (int s = 0; s <= t; ++s) {
        T sc = 0;
        if (d.dot_product) {
          const T* qt = qb + size_t(t) * qs;
          const T* ks = kb + size_t(s) * qs;
#pragma omp simd reduction(+ : sc)
          for (int i = 0; i < dk; ++i) sc += qt[i] * ks[i];
          sc *= T(d.scale);
        }
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
      T* ot = ob + size_t(t) * vs;
      for (int i = 0; i < dv; ++i) ot[i] = 0;
      for (int s = 0; s <= t; ++s) {
        const T* vsr = vb + size_t(s) * vs;
        const T ps = p[s];
        for (int i = 0; i < dv; ++i) ot[i] += ps * vsr[i];
      }
    }
  }
}

// dq, dk, dv += ...; dbias [H, T] += gradient of the bias table (may be nullptr).
// work: scratch of size B*H*T (per-(b,h) bias gradients, reduced in a fixed order).
template <class T>
void attention_backward(T* dq, T* dkk, T* dvv, T* dbias, const T* dout, const T* P, const T* q,
                        const T* k, const T* v, const AttnDims& d, std::vector<T>& work) {
  const int Tn = d.T, H = d.H, dk = d.dk, dv = d.dv;
  const size_t qs = size_t(H) * dk, vs = size_t(H) * dv;
  if (dbias) work.assign(size_t(d.B) * H * Tn, T(0));
#pragma omp parallel
  {
    std::vector<T> dS(static_cast<size_t>(Tn));
#pragma omp for schedule(static)
    for (int bh = 0; bh < d.B * H; ++bh) {
      const int b = bh / H, h = bh % H;
      const size_t qo = size_t(b) * Tn * qs + size_t(h) * dk;
      const size_t vo = size_t(b) * Tn * vs + size_t(h) * dv;
      T* wb = dbias ? work.data() + size_t(bh) * Tn : nullptr;
      for (int t = 0; t < Tn; ++t) {
        const T* p = P + (size_t(bh) * Tn + t) * Tn;
        const T* go = dout + vo + size_t(t) * vs;
        T D = 0;
        for (int s = 0; s <= t; ++s) {
          const T* vsr = v + vo + size_t(s) * vs;
          T dp = 0;
#pragma omp simd reduction(+ : dp)
          for (int i = 0; i < dv; ++i) dp += go[i] * vsr[i];
          dS[s] = dp;
          D += p[s] * dp;
          T* dvs = dvv + vo + size_t(s) * vs;
          for (int i = 0; i < dv; ++i) dvs[i] += p[s] * go[i];
        }
        for (int s = 0; s <= t; ++s) dS[s] = p[s] * (dS[s] - D);
        if (wb)
          for (int s = 0; s <= t; ++s) wb[t - s] += dS[s];
        if (d.dot_product) {
          const T sc = T(d.scale);
          const T* qt = q + qo + size_t(t) * qs;
          T* dqt = dq + qo + size_t(t) * qs;
          for (int s = 0; s <= t; ++s) {
            const T g = dS[s] * sc;
            const T* ks = k + qo + size_t(s) * qs;
            T* dks = dkk + qo + size_t(s) * qs;
            for (int i = 0; i < dk; ++i) {
              dqt[i] += g * ks[i];
              dks[i] += g * qt[i];
            }
          }
        }
      }
    }
  }
  if (dbias)
    for (int b = 0; b < d.B; ++b)
      for (int h = 0; h < H; ++h)
        for (int n = 0; n < Tn; ++n) dbias[h * Tn + n] += work[(size_t(b) * H + h) * Tn + n];
}

}  // namespace attnlab
