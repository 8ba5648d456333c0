#pragma once
// Causal multi-head attention over projected q, k, v, tiled with an online softmax so that
// memory is O(T) per head (FlashAttention, Dao et al. 2022):
//   q, k: [B, T, H*dk]  v: [B, T, H*dv]  o: [B, T, H*dv]   head h = columns h*d .. (h+1)*d-1
//   s[t, s'] = scale * <q_t, k_s'> (if dot_product) + bias[h][t - s'],  s' <= t
//   P = softmax(s) over s' <= t,  o_t = sum_s' P[t, s'] v_s'
// The forward saves only the log-sum-exp of every row, lse [B, H, T]; the backward
// recomputes P tile by tile. Tile products are GEMMs (OpenBLAS runs them single-threaded
// inside our parallel loop over (b, h)); tiles above the diagonal are skipped and the
// diagonal tile is masked. When dot_product is false, q and k may be null.
// q, k and v may be column blocks of one fused projection [B, T, ld] (Transformer's fused
// q/k/v GEMM): qkv_ld is then their row stride, shared by dq, dk and dv.
#include <cmath>
#include <vector>

#include "kernels/grad_mode.h"

namespace attnlab {

struct AttnDims {
  int B = 0, T = 0, H = 0, dk = 0, dv = 0;
  double scale = 1.0;
  bool dot_product = true;
  int qkv_ld = 0;  // row stride of q, k, v (and dq, dk, dv); 0: separate [B, T, H*dk] / [B, T, H*dv]
  int o_ld = 0;    // row stride of o and dout; 0: H*dv (a group of a layer's heads writes columns of a wider o)
  // > 0: bounded logits, every score s (the q.k term and the bias) becomes c tanh(s / c); the
  // backward multiplies dS by 1 - tanh^2.
  double logit_cap = 0;
  int q_stride() const { return qkv_ld > 0 ? qkv_ld : H * dk; }
  int v_stride() const { return qkv_ld > 0 ? qkv_ld : H * dv; }
  int o_stride() const { return o_ld > 0 ? o_ld : H * dv; }
};

// c tanh(s / c), and its derivative 1 - (capped / c)^2 written in terms of the capped score.
template <class T>
inline T cap_logit(T s, double c) { return T(c) * std::tanh(s / T(c)); }
template <class T>
inline T cap_slope(T capped, double c) {
  const T r = capped / T(c);
  return T(1) - r * r;
}

constexpr int kAttnTile = 64;  // query and key tile (equal and aligned: every row of a tile has a valid key)

// bias: [H, T] table (or nullptr for none). lse: [B, H, T] saved row log-sum-exps.
// work: scratch kept by the caller (no allocation per step once it is large enough).
template <class T>
void attention_forward(T* o, T* lse, const T* q, const T* k, const T* v, const T* bias, const AttnDims& d,
                       std::vector<T>& work);

// dq, dk, dv (+)= ... (GradMode: set overwrites them, head by head inside the parallel loop);
// dbias [H, T] += gradient of the bias table (may be nullptr); bias is the
// forward's table (or nullptr), o the forward's output. Per tile: P = exp(S - lse); dP = dO V^T;
// dV += P^T dO; dS = P (.) (dP - D), D_t = <dO_t, o_t>; dQ += s dS K; dK += s dS^T Q;
// dbias[t - s'] += dS.
template <class T>
void attention_backward(T* dq, T* dkk, T* dvv, T* dbias, const T* dout, const T* o, const T* lse, const T* q, const T* k,
                        const T* v, const T* bias, const AttnDims& d, std::vector<T>& work,
                        GradMode mode = GradMode::add);

}  // namespace attnlab
