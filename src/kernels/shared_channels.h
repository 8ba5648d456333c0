#pragma once
// Kernels for batches whose tokens x_t = [p_t, e_t] have P private channels p_t (per
// sequence) and shared channels e_t that are the same in every sequence of the batch (e.g.
// paper 3's E4 tokens: one value of the series and 16 sin/cos features of the position).
// Everything that involves only the shared channels is computed once per batch, per head and
// position, instead of once per sequence: at E4's shape (P = 1, d = 17) this removes 16 of
// the 17 multiply-adds of every score, value and gradient term. Exact: the same sums,
// regrouped. 16 heads (units) per register, as in kernels/shallow_blocked.h.
#include "kernels/shallow_blocked.h"

namespace attnlab::blocked {

// The private-channel counts with compiled kernels.
inline bool shared_private_ok(int P, int d) { return (P == 1 || P == 2 || P == 4) && P < d; }
template <class F>
inline void dispatch_private(int P, F&& f) {
  switch (P) {
    case 1: f.template operator()<1>(); break;
    case 2: f.template operator()<2>(); break;
    default: f.template operator()<4>(); break;
  }
}

// ---- Shallow attention -----------------------------------------------------------------
// Scores s_t = x_t^T W x_T split by blocks of W (p private, e shared):
//   s_t = p_t^T (W_pp p_T + W_pe e_T) + (e_t^T W_ep) p_T + e_t^T W_ee e_T
// and values v_t = <U, x_t> = <U_p, p_t> + <U_e, e_t>. Per block of 16 heads, the table is
// [W_pp (P*P); q_c = W_pe e_T (P); U_p (P); per t: h_t = W_ep^T e_t (P), c_t = e_t^T W_ee e_T,
// mu_t = <U_e, e_t>].
inline int shared_attn_table_size(int P, int Tn) { return P * P + 2 * P + Tn * (P + 2); }
// Per block of partial gradients: [dW_pp (P*P); R = sum of r (P); dU_p (P); dc; per t:
// A_t = sum dz alpha_t, Q1_t = sum ds_t p_T (P), Q2_t = sum ds_t].
inline int shared_attn_acc_size(int P, int Tn) { return P * P + 2 * P + 1 + Tn * (P + 2); }

constexpr int kU = 4;  // interleaved partial sums over t

// Position t of shared_attend's last pass: normalize p_t, the value v_t, and the sums.
template <int P>
inline void shared_value_step(const float* X, int t, int d, const v16* rows, const v16* Up, v16 inv, v16* p, v16* v,
                              v16& z, v16* ap) {
  p[t] *= inv;
  const float* x = X + size_t(t) * d;
  v16 vt = rows[size_t(t) * (P + 2) + P + 1];
  for (int k = 0; k < P; ++k) {
    vt += Up[k] * x[k];
    ap[k] += p[t] * x[k];
  }
  v[t] = vt;
  z += p[t] * vt;
}

// Attention of one sequence X [Tn, d] (private channels first) for one block: fills the
// probabilities p [Tn], the values v [Tn], a_p = sum_t p_t p_t (P); returns z = sum_t p_t v_t.
template <int P>
inline v16 shared_attend(const float* X, int Tn, int d, const v16* tab, float sc, v16* p, v16* v, v16* ap) {
  const float* pT = X + size_t(Tn - 1) * d;
  const v16* Wpp = tab;
  const v16* qc = tab + P * P;
  const v16* Up = qc + P;
  const v16* rows = Up + P;
  v16 q[P];
  for (int k = 0; k < P; ++k) {
    v16 acc = qc[k];
    for (int j = 0; j < P; ++j) acc += Wpp[k * P + j] * pT[j];
    q[k] = acc;
  }
  v16 mx = splat(-INFINITY);
  for (int t = 0; t < Tn; ++t) {
    const float* x = X + size_t(t) * d;
    const v16* row = rows + size_t(t) * (P + 2);
    v16 s = row[P];
    for (int k = 0; k < P; ++k) s += q[k] * x[k] + row[k] * pT[k];
    s *= sc;
    p[t] = s;
    mx = vmax(mx, s);
  }
  const v16 inv = exp_shifted(p, Tn, mx);
  // The sums over t run in kU interleaved partial sums: one chain per sum would wait on the
  // multiply-add latency at every t (measured: the kernel ran at a third of its throughput).
  v16 zs[kU] = {}, as[kU][P] = {};
  int t = 0;
  for (; t + kU <= Tn; t += kU)
    for (int u = 0; u < kU; ++u) shared_value_step<P>(X, t + u, d, rows, Up, inv, p, v, zs[u], as[u]);
  for (; t < Tn; ++t) shared_value_step<P>(X, t, d, rows, Up, inv, p, v, zs[0], as[0]);
  v16 z{};
  for (int k = 0; k < P; ++k) ap[k] = v16{};
  for (int u = 0; u < kU; ++u) {
    z += zs[u];
    for (int k = 0; k < P; ++k) ap[k] += as[u][k];
  }
  return z;
}

// The gradient of one sequence for one block (g = dy / sqrt m) from its attention.
template <int P>
inline void shared_attn_backward(const float* X, int Tn, int d, float sc, bool erf, v16 cc, v16 z, v16 hh, const v16* ap,
                                 const v16* p, const v16* v, float g, v16* acc) {
  const float* pT = X + size_t(Tn - 1) * d;
  const v16 dz = g * cc * vdsigma(erf, z, hh);
  v16* dWpp = acc;
  v16* R = acc + P * P;
  v16* dUp = R + P;
  v16* dc = dUp + P;
  v16* rows = dc + 1;
  *dc += g * hh;
  for (int k = 0; k < P; ++k) dUp[k] += dz * ap[k];
  v16 Ds[kU] = {};
  int t = 0;
  for (; t + kU <= Tn; t += kU)
    for (int u = 0; u < kU; ++u) Ds[u] += p[t + u] * v[t + u];
  for (; t < Tn; ++t) Ds[0] += p[t] * v[t];
  v16 Dsum{};
  for (int u = 0; u < kU; ++u) Dsum += Ds[u];
  Dsum *= dz;
  v16 rs[kU][P] = {};
  const auto step = [&](int tt, v16* r) {
    const float* x = X + size_t(tt) * d;
    v16* row = rows + size_t(tt) * (P + 2);
    const v16 ds = sc * p[tt] * (dz * v[tt] - Dsum);
    row[0] += dz * p[tt];
    for (int k = 0; k < P; ++k) {
      r[k] += ds * x[k];
      row[1 + k] += ds * pT[k];
    }
    row[P + 1] += ds;
  };
  for (t = 0; t + kU <= Tn; t += kU)
    for (int u = 0; u < kU; ++u) step(t + u, rs[u]);
  for (; t < Tn; ++t) step(t, rs[0]);
  for (int k = 0; k < P; ++k) {
    v16 r{};
    for (int u = 0; u < kU; ++u) r += rs[u][k];
    R[k] += r;
    for (int j = 0; j < P; ++j) dWpp[k * P + j] += r * pT[j];
  }
}

// Forward and backward of one sequence for dy = coef (f - y), every block (as fused_seq).
// tabs: [m/16][table]; acc: [m/16][acc]; p, v: [m/16][Tn]; a: [m/16][P]; zh: [m/16][2].
template <int P>
inline float shared_fused_seq(const float* X, int Tn, int d, const v16* tabs, const float* c, int m, float sc, bool erf,
                              float inv_sqrt_m, float y, float coef, v16* acc, v16* p, v16* v, v16* a, v16* zh) {
  const int tn = shared_attn_table_size(P, Tn), an = shared_attn_acc_size(P, Tn);
  return fused_blocks(
      m / kLanes, c, erf, inv_sqrt_m, y, coef, zh,
      [&](int blk) {
        return shared_attend<P>(X, Tn, d, tabs + size_t(blk) * tn, sc, p + size_t(blk) * Tn, v + size_t(blk) * Tn,
                                a + size_t(blk) * P);
      },
      [&](int blk, v16 z, v16 hh, float g) {
        shared_attn_backward<P>(X, Tn, d, sc, erf, load(c + blk * kLanes), z, hh, a + size_t(blk) * P, p + size_t(blk) * Tn,
                                v + size_t(blk) * Tn, g, acc + size_t(blk) * an);
      });
}

// ---- IndRNN ----------------------------------------------------------------------------
// The input term W_in x_t = W_p p_t + zeta_t with zeta_t = W_e e_t. Per block the table is
// [W_p (P); per t: zeta_t]; the partial gradients [dW_p (P); du; dc; per t: Z_t = sum dz_t].
inline int shared_rnn_table_size(int P, int Tn) { return P + Tn; }
inline int shared_rnn_acc_size(int P, int Tn) { return P + 2 + Tn; }

// Forward of S sequences for one block (as rnn_forward): states in H[s][t] if H, h_T in hT.
template <int P, int S>
inline void shared_rnn_forward(const float* const* X, int Tn, int d, const v16* tab, v16 uu, v16* const* H, v16* hT) {
  v16 w[P];
  for (int k = 0; k < P; ++k) w[k] = tab[k];
  const v16* zeta = tab + P;
  v16 h[S];
  for (int s = 0; s < S; ++s) h[s] = v16{};
  for (int t = 0; t < Tn; ++t) {
    v16 z[S];
    for (int s = 0; s < S; ++s) {
      const float* x = X[s] + size_t(t) * d;
      z[s] = uu * h[s] + zeta[t];
      for (int k = 0; k < P; ++k) z[s] += w[k] * x[k];
    }
    for (int s = 0; s < S; ++s) {
      h[s] = vtanh(z[s]);
      if (H) H[s][t] = h[s];
    }
  }
  for (int s = 0; s < S; ++s) hT[s] = h[s];
}

// BPTT of S sequences for one block from their states H[s] [Tn] and dh_T = g[s] c, the S
// chains interleaved (each step waits on the previous one's multiply latency).
template <int P, int S>
inline void shared_rnn_backward(const float* const* X, int Tn, int d, v16 uu, v16 cc, const v16* const* H, const float* g,
                                v16* acc) {
  v16 dw[P];
  for (int k = 0; k < P; ++k) dw[k] = acc[k];
  v16* Z = acc + P + 2;
  v16 dh[S], du{}, dc{};
  for (int s = 0; s < S; ++s) {
    dh[s] = g[s] * cc;
    dc += g[s] * H[s][Tn - 1];
  }
  acc[P + 1] += dc;
  for (int t = Tn - 1; t >= 0; --t) {
    v16 zsum{};
    for (int s = 0; s < S; ++s) {
      const v16 h = H[s][t];
      const v16 dz = dh[s] * (1.0f - h * h);
      const float* x = X[s] + size_t(t) * d;
      for (int k = 0; k < P; ++k) dw[k] += dz * x[k];
      zsum += dz;
      if (t > 0) du += dz * H[s][t - 1];
      dh[s] = dz * uu;
    }
    Z[t] += zsum;
  }
  for (int k = 0; k < P; ++k) acc[k] = dw[k];
  acc[P] += du;
}

}  // namespace attnlab::blocked
