// Attention probes of the Transformer (paper 1): logit sizes, softmax entropy and the
// effective rank of each head's bilinear form W_Q,h^T W_K,h. They recompute the logits of the
// last forward from its saved q, k and bias table (the forward keeps only row log-sum-exps),
// in double, for a few sequences: a diagnostic, not a hot path.
#include <algorithm>
#include <cmath>

#include "kernels/linear.h"
#include "kernels/svd.h"
#include "models/transformer.h"

namespace attnlab {

template <class T>
std::vector<HeadProbe> Transformer<T>::head_probes(int max_seqs) const {
  std::vector<HeadProbe> out;
  const int B = std::min(B_, std::max(0, max_seqs)), Tn = T_, C = cfg_.d_model;
  if (B == 0 || Tn == 0) return out;
  for (int l = 0; l < cfg_.layers; ++l) {
    const LayerActs& a = acts_[l];
    const int qd = qk_width(cfg_, l), H = cfg_.heads[l];
    const int ld = (cfg_.dot_product ? 2 * qd : 0) + v_width(cfg_, l);
    const bool has_bias = cfg_.rpe != Rpe::none;
    // In last-position mode the last layer formed no q or k: project the probed rows here.
    std::vector<T> own;
    const T* qkv = a.qkv.data();
    if (last_ && l + 1 == cfg_.layers && cfg_.dot_product) {
      own.resize(size_t(B) * Tn * ld);
      linear_forward(own.data(), norm_in(a.n1, a.h_in), arena.p(L_[l].qkv_w), arena.p(L_[l].qkv_b), B * Tn, C, ld);
      qkv = own.data();
    }
    for (int h = 0; h < H; ++h) {
      const int dk = cfg_.head_dim[size_t(l)][size_t(h)], qo = q_offset(cfg_, l, h);
      const double scale = cfg_.score_scale > 0 ? cfg_.score_scale : 1.0 / std::sqrt(double(dk));
      HeadProbe p;
      p.layer = l;
      p.head = h;
      double sum_abs = 0, count = 0, ent = 0, ratio = 0, rows = 0, ratio_rows = 0;
      std::vector<double> s(static_cast<size_t>(Tn));
      for (int b = 0; b < B; ++b)
        for (int t = 0; t < Tn; ++t) {
          const T* q = qkv + (size_t(b) * Tn + t) * ld + qo;
          double mx = -INFINITY;
          for (int j = 0; j <= t; ++j) {
            double v = has_bias ? double(a.bias[size_t(h) * Tn + size_t(t - j)]) : 0.0;
            if (cfg_.dot_product) {
              const T* k = qkv + (size_t(b) * Tn + j) * ld + qd + qo;
              double dot = 0;
              for (int c = 0; c < dk; ++c) dot += double(q[c]) * double(k[c]);
              v += scale * dot;
            }
            if (cfg_.logit_cap > 0) v = cap_logit(v, cfg_.logit_cap);
            s[size_t(j)] = v;
            mx = std::max(mx, v);
            p.max_abs_logit = std::max(p.max_abs_logit, std::abs(v));
            sum_abs += std::abs(v);
            count += 1;
          }
          double z = 0;
          for (int j = 0; j <= t; ++j) z += std::exp(s[size_t(j)] - mx);
          double e = 0;
          for (int j = 0; j <= t; ++j) {
            const double pj = std::exp(s[size_t(j)] - mx) / z;
            if (pj > 0) e -= pj * std::log(pj);
          }
          ent += e;
          rows += 1;
          if (t >= 1) { ratio += e / std::log(double(t + 1)); ratio_rows += 1; }
        }
      p.mean_abs_logit = count > 0 ? sum_abs / count : 0;
      p.entropy = rows > 0 ? ent / rows : 0;
      p.entropy_ratio = ratio_rows > 0 ? ratio / ratio_rows : 1.0;
      if (cfg_.dot_product) {  // M = W_q,h^T W_k,h (C x C), the head's bilinear form on its input
        const T* wq = arena.p(L_[l].qw) + size_t(qo) * C;
        const T* wk = arena.p(L_[l].kw) + size_t(qo) * C;
        std::vector<double> m(size_t(C) * C, 0.0);
        for (int c = 0; c < dk; ++c)
          for (int i = 0; i < C; ++i) {
            const double qi = double(wq[size_t(c) * C + i]);
            for (int j = 0; j < C; ++j) m[size_t(i) * C + j] += qi * double(wk[size_t(c) * C + j]);
          }
        p.qk_eff_rank = effective_rank(svd(m, C, C).s);
      }
      out.push_back(p);
    }
  }
  return out;
}

template std::vector<HeadProbe> Transformer<float>::head_probes(int) const;
template std::vector<HeadProbe> Transformer<double>::head_probes(int) const;

}  // namespace attnlab
