#pragma once
// Register-blocked IndRNN kernels for float and tanh, 16 units per AVX-512 register and the
// input dimension D a compile-time constant (kernels/shallow_blocked.h pads any d <= 32).
// Per sequence and block of 16 units the whole recurrence runs in registers: W_in's D columns,
// u, h and, backward, the D input-weight gradients. The generic loops in models/rnn.cpp store
// z and h for every (sequence, step, unit) and stream them back (2 x 99 MB at E4's n 4000,
// T 97, m 64), which bounded them by memory bandwidth.
//   h_t = tanh(W_in x_t + u h_{t-1}),  h_0 = 0;  f = (1/sqrt m) sum_i c_i h_{T,i}
#include "kernels/shallow_blocked.h"

namespace attnlab::blocked {

// Forward of S sequences X[s] [Tn, D] for units h0 .. h0+15; Wt [D, m] (units innermost).
// The S recurrences are independent chains interleaved step by step: one chain is bound by
// the latency of tanh (measured: 70 ms for E4's IndRNN step on one thread, against 40 ms
// with 4 chains). Stores h_t in H[s][t] when H is not null; h_T in hT[s].
template <int D, int S>
inline void rnn_forward(const float* const* X, int Tn, const float* Wt, const float* u, int m, int h0, v16* const* H,
                        v16* hT) {
  v16 w[D];
  for (int k = 0; k < D; ++k) w[k] = load(Wt + size_t(k) * m + h0);
  const v16 uu = load(u + h0);
  v16 h[S];
  for (int s = 0; s < S; ++s) h[s] = v16{};
  for (int t = 0; t < Tn; ++t) {
    v16 z[S];
    for (int s = 0; s < S; ++s) {
      const float* x = X[s] + size_t(t) * D;
      z[s] = uu * h[s];
      for (int k = 0; k < D; ++k) z[s] += w[k] * x[k];
    }
    for (int s = 0; s < S; ++s) {
      h[s] = vtanh(z[s]);
      if (H) H[s][t] = h[s];
    }
  }
  for (int s = 0; s < S; ++s) hT[s] = h[s];
}

// BPTT of one sequence for the 16 units at h0 from its states H [Tn] and dh_T = g c:
//   dz_t = dh_t (1 - h_t^2);  dW_in += dz_t x_t^T;  du += dz_t h_{t-1};  dh_{t-1} = dz_t u.
// acc = [dW_in (D vectors); du; dc] of this block.
template <int D>
inline void rnn_backward_from(const float* X, int Tn, const float* u, const float* c, int h0, const v16* H, float g,
                              v16* acc) {
  v16 dw[D];
  for (int k = 0; k < D; ++k) dw[k] = acc[k];
  const v16 uu = load(u + h0);
  v16 dh = g * load(c + h0), du{};
  acc[D + 1] += g * H[Tn - 1];
  for (int t = Tn - 1; t >= 0; --t) {
    const v16 dz = dh * (1.0f - H[t] * H[t]);
    const float* x = X + size_t(t) * D;
    for (int k = 0; k < D; ++k) dw[k] += dz * x[k];
    if (t > 0) du += dz * H[t - 1];
    dh = dz * uu;
  }
  for (int k = 0; k < D; ++k) acc[k] = dw[k];
  acc[D] += du;
}

// Forward and backward of S sequences in one pass for dy_s = coef_s (f_s - y_s) (as
// fused_seq). H: [m/16][S][Tn] states; acc: [m/16][D + 2]. Writes f[s].
template <int D, int S>
inline void rnn_fused_seqs(const float* const* X, int Tn, const float* Wt, const float* u, const float* c, int m,
                           float inv_sqrt_m, const float* y, const float* coef, v16* acc, v16* H, float* f) {
  const int nb = m / kLanes;
  v16 fs[S];
  for (int s = 0; s < S; ++s) fs[s] = v16{};
  for (int blk = 0; blk < nb; ++blk) {
    v16* Hs[S];
    v16 hT[S];
    for (int s = 0; s < S; ++s) Hs[s] = H + (size_t(blk) * S + s) * Tn;
    rnn_forward<D, S>(X, Tn, Wt, u, m, blk * kLanes, Hs, hT);
    const v16 cc = load(c + blk * kLanes);
    for (int s = 0; s < S; ++s) fs[s] += cc * hT[s];
  }
  for (int s = 0; s < S; ++s) {
    float out = 0;
    for (int l = 0; l < kLanes; ++l) out += fs[s][l];
    f[s] = out * inv_sqrt_m;
    const float g = coef[s] * (f[s] - y[s]) * inv_sqrt_m;
    for (int blk = 0; blk < nb; ++blk)
      rnn_backward_from<D>(X[s], Tn, u, c, blk * kLanes, H + (size_t(blk) * S + s) * Tn, g, acc + size_t(blk) * (D + 2));
  }
}

// Outputs f = (1/sqrt m) sum_i c_i h_{T,i} of B sequences in groups of S, threads over groups:
// seqs(g, X) points X[0..S) at group g's sequences (a short last group repeats its last one),
// block(X, h0, hT) runs the recurrences of units h0 .. h0+15 and writes h_T.
template <int S, class Seqs, class Block>
inline void rnn_outputs(int B, int m, const float* c, float kf, float* out, Seqs&& seqs, Block&& block) {
#pragma omp parallel for schedule(static)
  for (int g = 0; g < (B + S - 1) / S; ++g) {
    const float* X[S];
    seqs(g, X);
    v16 f[S] = {}, hT[S];
    for (int h0 = 0; h0 < m; h0 += kLanes) {
      block(X, h0, hT);
      for (int s = 0; s < S; ++s) f[s] += load(c + h0) * hT[s];
    }
    for (int s = 0; s < S && g * S + s < B; ++s) {
      float sum = 0;
      for (int l = 0; l < kLanes; ++l) sum += f[s][l];
      out[g * S + s] = sum * kf;
    }
  }
}

}  // namespace attnlab::blocked
