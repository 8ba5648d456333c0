// Last-query attention in the input space (attention_last.h). Batched over the sequences
// through GEMMs (one per head for the projections, one per sequence for scores and sums).
#include "kernels/attention_last.h"

#include <algorithm>
#include <cmath>

#include "kernels/gemm.h"
#include "kernels/linear.h"

namespace attnlab {

template <class T>
void LastAttnState<T>::reserve(int B, int H, int dk, int Tn, int C) {
  const size_t b = size_t(B), h = size_t(H);
  q.resize(b * h * dk); dq.resize(q.size());
  u.resize(b * h * C); z.resize(u.size()); dz.resize(u.size()); w.resize(u.size());
  c.resize(b * h); e.resize(c.size());
  p.resize(b * h * Tn); ds.resize(p.size()); g.resize(p.size());
}

template <class T>
void last_attention_forward(T* o, const T* n, const QkvWeights<T>& W, const T* bias, const AttnDims& d, int C,
                            LastAttnState<T>& st) {
  const int B = d.B, Tn = d.T, H = d.H, dk = d.dk, dv = d.dv, qd = H * dk, vd = H * dv, os = d.o_stride();
  const size_t TC = size_t(Tn) * C;
  const T* nlast = n + size_t(Tn - 1) * C;  // row b at nlast + b T C
  if (d.dot_product) {
    // q = n_{T-1} W_q^T + b_q;  u_h = q_h W_k,h;  c_h = <q_h, b_k,h>
    for (int b = 0; b < B; ++b) std::copy_n(W.bq, qd, st.q.data() + size_t(b) * qd);
    gemm(false, true, B, qd, C, T(1), nlast, int(TC), W.wq, C, T(1), st.q.data(), qd);
    for (int h = 0; h < H; ++h)
      gemm(false, false, B, C, dk, T(1), st.q.data() + size_t(h) * dk, qd, W.wk + size_t(h) * dk * C, C, T(0),
           st.u.data() + size_t(h) * C, H * C);
    for (int b = 0; b < B; ++b)
      for (int h = 0; h < H; ++h) {
        const T* qh = st.q.data() + size_t(b) * qd + size_t(h) * dk;
        T s = 0;
        for (int i = 0; i < dk; ++i) s += qh[i] * W.bk[size_t(h) * dk + i];
        st.c[size_t(b) * H + h] = s;
      }
  }
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    T* P = st.p.data() + size_t(b) * H * Tn;  // [H, T]
    const T* nb = n + size_t(b) * TC;
    if (d.dot_product) gemm(false, true, H, Tn, C, T(d.scale), st.u.data() + size_t(b) * H * C, C, nb, C, T(0), P, Tn);
    else std::fill_n(P, size_t(H) * Tn, T(0));
    for (int h = 0; h < H; ++h) {
      T* row = P + size_t(h) * Tn;
      const T off = d.dot_product ? T(d.scale) * st.c[size_t(b) * H + h] : T(0);
      const T* bt = bias ? bias + size_t(h) * Tn : nullptr;
      T mx = -INFINITY;
      for (int j = 0; j < Tn; ++j) {
        row[j] += off + (bt ? bt[Tn - 1 - j] : T(0));
        mx = std::max(mx, row[j]);
      }
      if (d.logit_cap > 0) {
        T* g = st.g.data() + (size_t(b) * H + h) * Tn;
        mx = -INFINITY;
        for (int j = 0; j < Tn; ++j) {
          row[j] = cap_logit(row[j], d.logit_cap);
          g[j] = cap_slope(row[j], d.logit_cap);
          mx = std::max(mx, row[j]);
        }
      }
      T sum = 0;
      for (int j = 0; j < Tn; ++j) sum += (row[j] = std::exp(row[j] - mx));
      const T inv = T(1) / sum;
      for (int j = 0; j < Tn; ++j) row[j] *= inv;
    }
    gemm(false, false, H, C, Tn, T(1), P, Tn, nb, C, T(0), st.z.data() + size_t(b) * H * C, C);  // z = P n
  }
  // o_h = z_h W_v,h^T + b_v,h
  for (int b = 0; b < B; ++b) std::copy_n(W.bv, vd, o + size_t(b) * os);
  for (int h = 0; h < H; ++h)
    gemm(false, true, B, dv, C, T(1), st.z.data() + size_t(h) * C, H * C, W.wv + size_t(h) * dv * C, C, T(1),
         o + size_t(h) * dv, os);
}

template <class T>
void last_attention_backward(T* dn, const QkvGrads<T>& G, T* dbias, const T* dout, const T* n, const QkvWeights<T>& W,
                             const AttnDims& d, int C, LastAttnState<T>& st, GradMode mode) {
  const int B = d.B, Tn = d.T, H = d.H, dk = d.dk, dv = d.dv, qd = H * dk, vd = H * dv, os = d.o_stride();
  const size_t TC = size_t(Tn) * C;
  const bool cap = d.logit_cap > 0;
  const T beta = mode == GradMode::set ? T(0) : T(1);
  // Values: dz_h = do_h W_v,h;  dW_v,h += do_h^T z_h;  db_v += sum_b do;  e_h = <do_h, b_v,h>
  for (int h = 0; h < H; ++h) {
    gemm(false, false, B, C, dv, T(1), dout + size_t(h) * dv, os, W.wv + size_t(h) * dv * C, C, T(0),
         st.dz.data() + size_t(h) * C, H * C);
    gemm(true, false, dv, C, B, T(1), dout + size_t(h) * dv, os, st.z.data() + size_t(h) * C, H * C, T(1),
         G.wv + size_t(h) * dv * C, C);
  }
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < vd; ++i) G.bv[i] += dout[size_t(b) * os + i];
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      T s = 0;
      for (int i = 0; i < dv; ++i) s += dout[size_t(b) * os + size_t(h) * dv + i] * W.bv[size_t(h) * dv + i];
      st.e[size_t(b) * H + h] = s;
    }
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    const T* P = st.p.data() + size_t(b) * H * Tn;
    T* dS = st.ds.data() + size_t(b) * H * Tn;
    const T* nb = n + size_t(b) * TC;
    const T* dzb = st.dz.data() + size_t(b) * H * C;
    gemm(false, true, H, Tn, C, T(1), dzb, C, nb, C, T(0), dS, Tn);  // dp = dz n^T (+ e)
    for (int h = 0; h < H; ++h) {
      T* row = dS + size_t(h) * Tn;
      const T* pr = P + size_t(h) * Tn;
      const T e = st.e[size_t(b) * H + h];
      T D = 0;
      for (int j = 0; j < Tn; ++j) D += pr[j] * (row[j] += e);
      for (int j = 0; j < Tn; ++j) row[j] = pr[j] * (row[j] - D);
      if (cap) {  // ds of the raw scores
        const T* g = st.g.data() + (size_t(b) * H + h) * Tn;
        for (int j = 0; j < Tn; ++j) row[j] *= g[j];
      }
    }
    T* dnb = dn + size_t(b) * TC;
    gemm(true, false, Tn, C, H, T(1), P, Tn, dzb, C, beta, dnb, C);  // dn (+)= p dz
    if (d.dot_product) {
      gemm(false, false, H, C, Tn, T(d.scale), dS, Tn, nb, C, T(0), st.w.data() + size_t(b) * H * C, C);  // w
      gemm(true, false, Tn, C, H, T(d.scale), dS, Tn, st.u.data() + size_t(b) * H * C, C, T(1), dnb, C);  // + s ds u
    }
  }
  if (dbias)
    for (int b = 0; b < B; ++b)
      for (int h = 0; h < H; ++h) {
        const T* row = st.ds.data() + (size_t(b) * H + h) * Tn;
        T* db = dbias + size_t(h) * Tn;
        for (int j = 0; j < Tn; ++j) db[Tn - 1 - j] += row[j];
      }
  if (!d.dot_product) return;
  // Queries and keys: dq_h = W_k,h w_h;  dW_k,h += q_h w_h^T (batched: rows of dq, sums over b)
  const T* nlast = n + size_t(Tn - 1) * C;
  for (int h = 0; h < H; ++h) {
    gemm(false, true, B, dk, C, T(1), st.w.data() + size_t(h) * C, H * C, W.wk + size_t(h) * dk * C, C, T(0),
         st.dq.data() + size_t(h) * dk, qd);
    gemm(true, false, dk, C, B, T(1), st.q.data() + size_t(h) * dk, qd, st.w.data() + size_t(h) * C, H * C, T(1),
         G.wk + size_t(h) * dk * C, C);
  }
  if (cap)  // the scores' constant term scale <q_h, b_k,h>: dq_h += scale S_h b_k,h, db_k,h += scale S_h q_h
    for (int b = 0; b < B; ++b)
      for (int h = 0; h < H; ++h) {
        const T* row = st.ds.data() + (size_t(b) * H + h) * Tn;
        T sum = 0;
        for (int j = 0; j < Tn; ++j) sum += row[j];
        const T sc = T(d.scale) * sum;
        T* dqh = st.dq.data() + size_t(b) * qd + size_t(h) * dk;
        const T* qh = st.q.data() + size_t(b) * qd + size_t(h) * dk;
        for (int i = 0; i < dk; ++i) {
          dqh[i] += sc * W.bk[size_t(h) * dk + i];
          G.bk[size_t(h) * dk + i] += sc * qh[i];
        }
      }
  gemm(true, false, qd, C, B, T(1), st.dq.data(), qd, nlast, int(TC), T(1), G.wq, C);  // dW_q += dq^T n_{T-1}
  gemv_colsum(G.bq, st.dq.data(), B, qd);
  gemm(false, false, B, C, qd, T(1), st.dq.data(), qd, W.wq, C, T(1), dn + size_t(Tn - 1) * C, int(TC));  // dn_{T-1} += dq W_q
}

template struct LastAttnState<float>;
template struct LastAttnState<double>;
template void last_attention_forward<float>(float*, const float*, const QkvWeights<float>&, const float*, const AttnDims&,
                                            int, LastAttnState<float>&);
template void last_attention_forward<double>(double*, const double*, const QkvWeights<double>&, const double*,
                                             const AttnDims&, int, LastAttnState<double>&);
template void last_attention_backward<float>(float*, const QkvGrads<float>&, float*, const float*, const float*,
                                             const QkvWeights<float>&, const AttnDims&, int, LastAttnState<float>&,
                                             GradMode);
template void last_attention_backward<double>(double*, const QkvGrads<double>&, double*, const double*, const double*,
                                              const QkvWeights<double>&, const AttnDims&, int, LastAttnState<double>&,
                                              GradMode);

}  // namespace attnlab
