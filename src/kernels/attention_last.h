#pragma once
// Attention of the last query of each sequence only, for a last layer whose loss reads only
// the last position (retrieval, per-sequence targets). Exact, and computed in the layer's
// input space: with k_j = W_k n_j + b_k and v_j = W_v n_j + b_v (n: the normed input [B, T, C]),
//   u_h = W_k,h^T q_h,   s_j = scale (<u_h, n_j> + <q_h, b_k,h>) + bias[h][T-1-j],
//   p = softmax(s),      z_h = sum_j p_j n_j,    o_h = W_v,h z_h + b_v,h,
// where q = W_q n_{T-1} + b_q. No key or value of the T positions is formed: the cost per head
// is O(T C) instead of the O(T C (d_k + d_v)) of projecting every position, so a one-layer
// model's step grows linearly with T. The backward follows the same algebra:
//   dz_h = W_v,h^T do_h,  dp_j = <dz_h, n_j> + <do_h, b_v,h>,  ds = p (dp - <p, dp>),
//   w_h = scale sum_j ds_j n_j,  dq_h = W_k,h w_h,  dW_k,h += q_h w_h^T,  dW_v,h += do_h z_h^T,
//   dn_j = scale ds_j u_h + p_j dz_h (+ W_q^T dq at j = T-1),  db_k gets nothing (sum_j ds_j = 0).
#include <vector>

#include "kernels/attention.h"

namespace attnlab {

// The layer's fused projection, PyTorch layout ([out, in]); q and k null without the dot product.
template <class T>
struct QkvWeights {
  const T *wq = nullptr, *bq = nullptr, *wk = nullptr, *bk = nullptr, *wv = nullptr, *bv = nullptr;
};
template <class T>
struct QkvGrads {
  T *wq = nullptr, *bq = nullptr, *wk = nullptr, *bk = nullptr, *wv = nullptr, *bv = nullptr;
};

// What the forward keeps for the backward, and the backward's scratch (allocated once).
template <class T>
struct LastAttnState {
  std::vector<T> q, u, c, p, z;  // [B, H dk], [B, H, C], [B, H], [B, H, T], [B, H, C]
  std::vector<T> g;              // logit_cap: the slopes 1 - tanh^2 of the scores [B, H, T]
  std::vector<T> dz, w, dq, ds, e;
  void reserve(int B, int H, int dk, int Tn, int C);
};

// o: [B, H dv] (row b: the last query's output of sequence b; row stride d.o_stride()); n: [B, T, C];
// bias: the [H, T] table or nullptr. d.B, d.T, d.H, d.dk, d.dv, d.o_ld, d.scale, d.dot_product and
// d.logit_cap are read. With a cap, s_j = c tanh(raw_j / c); the backward's ds is then multiplied
// by the slopes, no longer sums to 0, and the key bias gets  db_k,h += scale sum_j ds_j q_h  and the
// query  dq_h += scale sum_j ds_j b_k,h.
template <class T>
void last_attention_forward(T* o, const T* n, const QkvWeights<T>& W, const T* bias, const AttnDims& d, int C,
                            LastAttnState<T>& st);

// dn: [B, T, C], set or added to (mode); the grads and dbias [H, T] (may be null) are added to;
// dout: [B, H dv] (row stride d.o_stride()).
template <class T>
void last_attention_backward(T* dn, const QkvGrads<T>& G, T* dbias, const T* dout, const T* n, const QkvWeights<T>& W,
                             const AttnDims& d, int C, LastAttnState<T>& st, GradMode mode = GradMode::set);

}  // namespace attnlab
