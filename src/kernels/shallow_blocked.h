#pragma once
// Register-blocked forward and backward of the shallow attention model for float, 16 heads
// per AVX-512 register and the token dimension D a compile-time constant. Per sequence and
// block of 16 heads, q, the scores, a and the gradients live in registers (the generic
// loops in shallow_attention.cpp stream [T, m] arrays through L1 on every pass). GCC vector
// extensions: on CPUs without AVX-512 the same code compiles to narrower vectors.
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/fast_math.h"

namespace attnlab::blocked {

typedef float v16 __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
constexpr int kLanes = 16;

inline v16 splat(float x) { return v16{} + x; }
inline v16 load(const float* p) { v16 v; __builtin_memcpy(&v, p, sizeof(v)); return v; }
inline void store(float* p, v16 v) { __builtin_memcpy(p, &v, sizeof(v)); }
inline v16 vmax(v16 a, v16 b) { return a > b ? a : b; }

// exp as in kernels/fast_math.h (Cephes polynomial), on 16 lanes.
inline v16 vexp(v16 x) {
  x = x < splat(-87.f) ? splat(-87.f) : x;
  x = x > splat(88.f) ? splat(88.f) : x;
  const v16 u = x * 1.44269504088896341f + 0.5f;
  v16 n = __builtin_convertvector(__builtin_convertvector(u, v16i), v16);
  n = n > u ? n - 1.0f : n;
  v16 r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  const v16 y = exp_poly(r);
  const v16i e = (__builtin_convertvector(n, v16i) + 127) << 23;
  return y * (v16)e;
}
inline v16 vtanh(v16 x) {
  const v16 a = x < 0 ? -x : x;
  const v16 t = 1.0f - 2.0f / (vexp(2.0f * a) + 1.0f);
  return x < 0 ? -t : t;
}
inline v16 vsigma(bool erf, v16 z) {
  if (!erf) return vtanh(z);
  v16 h;
  for (int l = 0; l < kLanes; ++l) h[l] = std::erf(z[l] * 0.70710678118654752f);
  return h;
}
inline v16 vdsigma(bool erf, v16 z, v16 h) {
  if (!erf) return 1.0f - h * h;
  v16 d;
  for (int l = 0; l < kLanes; ++l) d[l] = 0.79788456080286536f * std::exp(-0.5f * z[l] * z[l]);
  return d;
}

// p[t] <- exp(p[t] - mx) for every t (mx: the scores' maximum); returns 1 / sum_t p[t].
inline v16 exp_shifted(v16* p, int Tn, v16 mx) {
  v16 sum{};
  for (int t = 0; t < Tn; ++t) {
    p[t] = vexp(p[t] - mx);
    sum += p[t];
  }
  return 1.0f / sum;
}

// Attention of one sequence X [Tn, D] for heads blk*16 .. blk*16+15.
// Wt [D, D, m], Ut [D, m] (heads innermost). Fills e [Tn] (the unnormalized weights
// exp(s_t - max s); the probabilities are e_t * inv), a [D] and inv; returns z. Normalizing
// a once instead of every e_t saves a pass over the T positions.
template <int D>
inline v16 attend(const float* X, int Tn, const float* Wt, const float* Ut, int m, int h0, float sc, v16* e, v16* a,
                  v16* inv) {
  const float* xT = X + size_t(Tn - 1) * D;
  v16 q[D];
  for (int k = 0; k < D; ++k) {
    v16 acc{};
    for (int j = 0; j < D; ++j) acc += load(Wt + (size_t(k) * D + j) * m + h0) * xT[j];
    q[k] = acc;
  }
  v16 mx = splat(-INFINITY);
  for (int t = 0; t < Tn; ++t) {
    const float* x = X + size_t(t) * D;
    v16 s{};
    for (int k = 0; k < D; ++k) s += q[k] * x[k];
    s *= sc;
    e[t] = s;
    mx = vmax(mx, s);
  }
  for (int k = 0; k < D; ++k) a[k] = v16{};
  v16 sum{};
  for (int t = 0; t < Tn; ++t) {
    e[t] = vexp(e[t] - mx);
    sum += e[t];
    const float* x = X + size_t(t) * D;
    for (int k = 0; k < D; ++k) a[k] += e[t] * x[k];
  }
  *inv = 1.0f / sum;
  v16 z{};
  for (int k = 0; k < D; ++k) {
    a[k] *= *inv;
    z += load(Ut + size_t(k) * m + h0) * a[k];
  }
  return z;
}

// Forward of one sequence: stores z, h [m]; returns sum_i c_i h_i (before 1/sqrt m). ent: adds
// the entropy of the rows of heads below m_valid (the heads beyond are padding).
template <int D>
inline float forward_seq(const float* X, int Tn, const float* Wt, const float* Ut, const float* c, int m, float sc,
                         bool erf, float* z, float* h, v16* e, double* ent, int m_valid) {
  v16 a[D], inv;
  v16 f{};
  for (int h0 = 0; h0 < m; h0 += kLanes) {
    const v16 zz = attend<D>(X, Tn, Wt, Ut, m, h0, sc, e, a, &inv);
    const v16 hh = vsigma(erf, zz);
    store(z + h0, zz);
    store(h + h0, hh);
    f += load(c + h0) * hh;
    if (ent)
      for (int t = 0; t < Tn; ++t)
        for (int l = 0; l < kLanes && h0 + l < m_valid; ++l) {
          const double p = double(e[t][l]) * inv[l];
          if (p > 0) *ent -= p * std::log(p);
        }
  }
  float s = 0;
  for (int l = 0; l < kLanes; ++l) s += f[l];
  return s;
}

// The gradient of one sequence (g = dy / sqrt m) for the 16 heads at h0, from its attention
// (e [Tn], inv, a [D], z, h = sigma(z)); accumulates into the block's partial sums acc = [dW
// (D*D vectors, [k][j]); dU (D); dc (1)]. With p_t = e_t inv and v_t = <U, x_t>, the score
// gradient ds_t = s p_t dz (v_t - sum_t' p_t' v_t') gives
//   dq = sum_t ds_t x_t = s dz (G - V a),  G = sum_t p_t v_t x_t,  V = sum_t p_t v_t,
// one pass over t (the two passes of ds_t took a fifth more).
template <int D>
inline void backward_from(const float* X, int Tn, const float* Ut, const float* c, int m, float sc, bool erf, v16 z,
                          v16 hh, const v16* a, const v16* e, v16 inv, float g, int h0, v16* acc) {
  const float* xT = X + size_t(Tn - 1) * D;
  const v16 dz = g * load(c + h0) * vdsigma(erf, z, hh);
  v16* dW = acc;
  v16* dU = acc + D * D;
  v16* dc = dU + D;
  *dc += g * hh;
  v16 u[D], G[D];
  for (int k = 0; k < D; ++k) {
    u[k] = load(Ut + size_t(k) * m + h0);
    dU[k] += dz * a[k];
    G[k] = v16{};
  }
  v16 V{};
  for (int t = 0; t < Tn; ++t) {
    const float* x = X + size_t(t) * D;
    v16 ux{};
    for (int k = 0; k < D; ++k) ux += u[k] * x[k];
    const v16 pu = e[t] * ux;
    V += pu;
    for (int k = 0; k < D; ++k) G[k] += pu * x[k];
  }
  V *= inv;
  const v16 sdz = sc * dz;
  for (int k = 0; k < D; ++k) {
    const v16 dq = sdz * (G[k] * inv - V * a[k]);
    for (int j = 0; j < D; ++j) dW[k * D + j] += dq * xT[j];
  }
}

// Backward of one sequence for the 16 heads at h0, recomputing its attention.
template <int D>
inline void backward_block(const float* X, int Tn, const float* Wt, const float* Ut, const float* c, int m, float sc,
                           bool erf, const float* h, float g, int h0, v16* acc, v16* e) {
  v16 a[D], inv;
  const v16 z = attend<D>(X, Tn, Wt, Ut, m, h0, sc, e, a, &inv);
  backward_from<D>(X, Tn, Ut, c, m, sc, erf, z, load(h + h0), a, e, inv, g, h0, acc);
}

// Forward and backward of one sequence in one pass, for a loss whose gradient at this
// sequence's output f is known as soon as f is: dy = coef * (f - y) (MSE of a one-output
// model). fwd(blk) runs block blk's attention (kept, not recomputed) and returns its z;
// bwd(blk, z, h, g) accumulates its gradient. zh: [m/16][2]. Returns f.
template <class Fwd, class Bwd>
inline float fused_blocks(int nb, const float* c, bool erf, float inv_sqrt_m, float y, float coef, v16* zh, Fwd&& fwd,
                          Bwd&& bwd) {
  v16 f{};
  for (int blk = 0; blk < nb; ++blk) {
    const v16 z = fwd(blk);
    const v16 hh = vsigma(erf, z);
    zh[2 * blk] = z;
    zh[2 * blk + 1] = hh;
    f += load(c + blk * kLanes) * hh;
  }
  float out = 0;
  for (int l = 0; l < kLanes; ++l) out += f[l];
  out *= inv_sqrt_m;
  const float g = coef * (out - y) * inv_sqrt_m;
  for (int blk = 0; blk < nb; ++blk) bwd(blk, zh[2 * blk], zh[2 * blk + 1], g);
  return out;
}

// fused_blocks for the register-blocked kernels: e [m/16][Tn], a [m/16][D], zh [m/16][3]
// (z, h, and the softmax's 1/sum after the pairs), acc [m/16][D*D + D + 1].
template <int D>
inline float fused_seq(const float* X, int Tn, const float* Wt, const float* Ut, const float* c, int m, float sc,
                       bool erf, float inv_sqrt_m, float y, float coef, v16* acc, v16* e, v16* a, v16* zh) {
  const int nb = m / kLanes;
  v16* inv = zh + 2 * nb;
  return fused_blocks(
      nb, c, erf, inv_sqrt_m, y, coef, zh,
      [&](int blk) {
        return attend<D>(X, Tn, Wt, Ut, m, blk * kLanes, sc, e + size_t(blk) * Tn, a + size_t(blk) * D, &inv[blk]);
      },
      [&](int blk, v16 z, v16 hh, float g) {
        backward_from<D>(X, Tn, Ut, c, m, sc, erf, z, hh, a + size_t(blk) * D, e + size_t(blk) * Tn, inv[blk], g,
                         blk * kLanes, acc + size_t(blk) * (D * D + D + 1));
      });
}

// The token dimensions with compiled kernels; any other d <= 32 runs at the next one, its
// tokens and weights padded with zeros (padding adds nothing to any score, output or gradient).
constexpr int kDims[] = {1, 2, 4, 8, 12, 16, 17, 20, 24, 32};
inline int padded_dim(int d) {
  for (int D : kDims)
    if (D >= d) return D;
  return 0;  // d > 32: the generic path
}
template <class F>
inline void dispatch_dim(int D, F&& f) {
  switch (D) {
    case 1: f.template operator()<1>(); break;
    case 2: f.template operator()<2>(); break;
    case 4: f.template operator()<4>(); break;
    case 8: f.template operator()<8>(); break;
    case 12: f.template operator()<12>(); break;
    case 16: f.template operator()<16>(); break;
    case 17: f.template operator()<17>(); break;
    case 20: f.template operator()<20>(); break;
    case 24: f.template operator()<24>(); break;
    default: f.template operator()<32>(); break;
  }
}
// X [Tn, d] -> out [Tn, D], zeros in the padding; returns out (or X itself when d == D).
inline const float* pad_tokens(const float* X, int Tn, int d, int D, float* out) {
  if (d == D) return X;
  for (int t = 0; t < Tn; ++t) {
    for (int k = 0; k < d; ++k) out[size_t(t) * D + k] = X[size_t(t) * d + k];
    for (int k = d; k < D; ++k) out[size_t(t) * D + k] = 0.f;
  }
  return out;
}

}  // namespace attnlab::blocked
