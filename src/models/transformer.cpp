// Transformer forward/backward; see transformer.h and docs/model.md for the formula.
#include "models/transformer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "core/profile.h"
#include "core/rng.h"
#include "kernels/activation.h"
#include "kernels/linear.h"
#include "kernels/norm.h"
#include "kernels/posbias.h"

namespace attnlab {

namespace {
std::string join_ints(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s;
}
}  // namespace

template <class T>
typename Transformer<T>::NormIds Transformer<T>::add_norm(const std::string& name) {
  NormIds id;
  const int64_t C = cfg_.d_model;
  if (cfg_.norm == Norm::none) return id;
  id.w = arena.add(name + ".weight", {C}, false);
  if (cfg_.norm == Norm::layer) id.b = arena.add(name + ".bias", {C}, false);
  return id;
}

template <class T>
Transformer<T>::Transformer(const ModelConfig& cfg, int max_batch) : cfg_(cfg), max_batch_(max_batch) {
  const int64_t C = cfg.d_model;
  if (cfg.vocab > 0) {
    embed_w_ = arena.add("embed.weight", {cfg.vocab, C}, false);
  } else {
    embed_w_ = arena.add("embed.weight", {C, cfg.d_in}, true);
    embed_b_ = arena.add("embed.bias", {C}, false);
  }
  if (cfg.pos == Pos::learned) pos_ = arena.add("pos.weight", {cfg.max_len, C}, false);
  L_.resize(size_t(cfg.layers));
  for (int l = 0; l < cfg.layers; ++l) groups_.push_back(head_groups(cfg, l));
  for (int l = 0; l < cfg.layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    const int64_t H = cfg.heads[l], qd = qk_width(cfg, l), vd = v_width(cfg, l), m = cfg.ffn[l];
    LayerIds& id = L_[l];
    id.n1 = add_norm(p + "norm1");
    // q, k, v weights adjacent in the arena, then their biases: one fused [2 sum d_k + sum d_v, C]
    // projection (one GEMM of 3x the width scales better on 2 threads than three).
    if (cfg.dot_product) {
      id.qw = arena.add(p + "attn.q.weight", {qd, C}, true);
      id.kw = arena.add(p + "attn.k.weight", {qd, C}, true);
    }
    id.vw = arena.add(p + "attn.v.weight", {vd, C}, true);
    if (cfg.dot_product) {
      id.qb = arena.add(p + "attn.q.bias", {qd}, false);
      id.kb = arena.add(p + "attn.k.bias", {qd}, false);
    }
    id.vb = arena.add(p + "attn.v.bias", {vd}, false);
    id.qkv_w = cfg.dot_product ? id.qw : id.vw;
    id.qkv_b = cfg.dot_product ? id.qb : id.vb;
    id.ow = arena.add(p + "attn.o.weight", {C, vd}, true);
    id.ob = arena.add(p + "attn.o.bias", {C}, false);
    if (cfg.rpe == Rpe::t5)
      id.rpe = arena.add(p + "attn.rpe", {H, cfg.rpe_buckets}, false);
    else if (cfg.rpe == Rpe::log || (cfg.rpe == Rpe::lin && cfg.rpe_learnable))
      id.rpe = arena.add(p + "attn.rpe", {H}, false);
    if (m > 0) {
      id.n2 = add_norm(p + "norm2");
      id.f1w = arena.add(p + "ffn.fc1.weight", {m, C}, true);
      id.f1b = arena.add(p + "ffn.fc1.bias", {m}, false);
      id.f2w = arena.add(p + "ffn.fc2.weight", {C, m}, true);
      id.f2b = arena.add(p + "ffn.fc2.bias", {C}, false);
    }
  }
  nf_ = add_norm("norm_f");
  head_w_ = arena.add("head.weight", {out_dim(), C}, true);
  head_b_ = arena.add("head.bias", {out_dim()}, false);
  arena.allocate();
  auto adjacent = [&](int a, int b) { return b < 0 || arena.info(a).offset + arena.info(a).size == arena.info(b).offset; };
  for (const LayerIds& id : L_)
    if (cfg.dot_product && !(adjacent(id.qw, id.kw) && adjacent(id.kw, id.vw) && adjacent(id.qb, id.kb) && adjacent(id.kb, id.vb)))
      throw std::logic_error("Transformer: q, k, v parameters are not adjacent in the arena");

  if (cfg.pos == Pos::sinusoidal) {
    sin_table_.resize(size_t(cfg.max_len) * C);
    for (int t = 0; t < cfg.max_len; ++t)
      for (int64_t i = 0; 2 * i < C; ++i) {
        const double ang = t / std::pow(10000.0, double(2 * i) / double(C));
        sin_table_[size_t(t) * C + 2 * i] = T(std::sin(ang));
        if (2 * i + 1 < C) sin_table_[size_t(t) * C + 2 * i + 1] = T(std::cos(ang));
      }
  }
  // Activations for the largest batch, allocated once.
  const size_t N = size_t(max_batch) * cfg.max_len, Tn = size_t(cfg.max_len);
  acts_.resize(size_t(cfg.layers));
  size_t maxp = 0, maxv = 0, maxm = 0, maxh = 0;
  for (int l = 0; l < cfg.layers; ++l) {
    LayerActs& a = acts_[l];
    const size_t H = cfg.heads[l], qd = qk_width(cfg, l), vd = v_width(cfg, l), m = cfg.ffn[l];
    a.h_in.resize(N * C);
    a.n1.resize(N * C); a.n1_mean.resize(N); a.n1_rstd.resize(N);
    const size_t P = (cfg.dot_product ? 2 * qd : 0) + vd;
    a.qkv.resize(N * P);
    a.lse.resize(size_t(max_batch) * H * Tn);
    a.att.resize(N * vd);
    a.h_mid.resize(N * C);
    a.bias.resize(H * Tn);
    if (m > 0) {
      a.n2.resize(N * C); a.n2_mean.resize(N); a.n2_rstd.resize(N);
      a.f1.resize(N * m); a.f1a.resize(N * m);
    }
    maxp = std::max(maxp, P); maxv = std::max(maxv, vd); maxm = std::max(maxm, m); maxh = std::max(maxh, H);
  }
  h_final_.resize(N * C); nf_out_.resize(N * C); nf_mean_.resize(N); nf_rstd_.resize(N);
  out_.resize(N * out_dim());
  dh_.resize(N * C); dn_.resize(N * C); datt_.resize(N * maxv);
  dqkv_.resize(N * maxp); df_.resize(N * maxm);
  work_.reserve(size_t(max_batch) * maxh * Tn);
  dbias_.resize(maxh * Tn);
  for (const HeadGroup& g : head_groups(cfg, cfg.layers - 1)) {  // one state per group of the last layer
    last_state_.emplace_back();
    last_state_.back().reserve(max_batch, g.H, g.dk, cfg.max_len, int(C));
  }
  h_last_.resize(size_t(max_batch) * C);
  dh_last_.resize(h_last_.size());
}

template <class T>
void Transformer<T>::init(uint64_t seed) {
  auto normal = [&](int id, double std) {
    if (id < 0) return;
    const ParamInfo& pi = arena.info(id);
    const uint64_t s = stream_id(pi.name);
    T* p = arena.p(id);
    for (size_t i = 0; i < pi.size; ++i) p[i] = T(std * rng_normal(seed, s, i));
  };
  auto fill = [&](int id, T v) {
    if (id >= 0) std::fill(arena.p(id), arena.p(id) + arena.info(id).size, v);
  };
  auto norm_init = [&](const NormIds& n) { fill(n.w, T(1)); fill(n.b, T(0)); };
  const int C = cfg_.d_model;
  if (cfg_.vocab > 0) normal(embed_w_, 1.0);
  else { normal(embed_w_, 1.0 / std::sqrt(double(cfg_.d_in))); fill(embed_b_, T(0)); }
  normal(pos_, 0.02);
  for (int l = 0; l < cfg_.layers; ++l) {
    const LayerIds& id = L_[l];
    const int H = cfg_.heads[l];
    norm_init(id.n1); norm_init(id.n2);
    for (int w : {id.qw, id.kw, id.vw, id.f1w}) normal(w, 1.0 / std::sqrt(double(C)));
    normal(id.ow, 1.0 / std::sqrt(double(v_width(cfg_, l))));
    if (cfg_.ffn[l] > 0) normal(id.f2w, 1.0 / std::sqrt(double(cfg_.ffn[l])));
    for (int b : {id.qb, id.kb, id.vb, id.ob, id.f1b, id.f2b}) fill(b, T(0));
    if (id.rpe >= 0) {
      T* p = arena.p(id.rpe);
      if (cfg_.rpe == Rpe::lin) for (int h = 0; h < H; ++h) p[h] = T(alibi_slope(h, H));
      if (cfg_.rpe == Rpe::log) for (int h = 0; h < H; ++h) p[h] = T(1);
      if (cfg_.rpe == Rpe::t5) fill(id.rpe, T(0));
    }
  }
  norm_init(nf_);
  normal(head_w_, 1.0 / std::sqrt(double(C)));
  fill(head_b_, T(0));
}

template <class T>
ParamCounts Transformer<T>::counts() const {
  ParamCounts c;
  c.total = int64_t(arena.size());
  for (const auto& p : arena.params())
    if (p.name.find(".attn.") != std::string::npos) c.attention += int64_t(p.size);
  for (int l = 0; l < cfg_.layers; ++l) c.attention_budget += qk_width(cfg_, l);
  return c;
}

template <class T>
AttnDims Transformer<T>::dims(int l, const HeadGroup& g, int B, int Tn) const {
  AttnDims d;
  d.B = B; d.T = Tn; d.H = g.H; d.dk = g.dk; d.dv = g.dv;
  d.scale = cfg_.score_scale > 0 ? cfg_.score_scale : 1.0 / std::sqrt(double(d.dk));
  d.dot_product = cfg_.dot_product;
  d.qkv_ld = (d.dot_product ? 2 * qk_width(cfg_, l) : 0) + v_width(cfg_, l);
  d.o_ld = v_width(cfg_, l);
  d.logit_cap = cfg_.logit_cap;
  return d;
}

template <class T>
void Transformer<T>::norm_fwd(const NormIds& id, T* out, T* mean, T* rstd, const T* x, int N) {
  const int C = cfg_.d_model;
  switch (cfg_.norm) {
    case Norm::none: break;  // its output is its input (norm_in): nothing copied
    case Norm::layer: layernorm_forward(out, mean, rstd, x, arena.p(id.w), arena.p(id.b), N, C); break;
    case Norm::rms: rmsnorm_forward(out, rstd, x, arena.p(id.w), N, C); break;
  }
}

template <class T>
void Transformer<T>::norm_bwd(const NormIds& id, T* dx, const T* dout, const T* x, const T* mean,
                              const T* rstd, int N, GradMode mode) {
  const int C = cfg_.d_model;
  switch (cfg_.norm) {
    case Norm::none: break;  // the caller wrote the gradient into dx itself (dnorm)
    case Norm::layer:
      layernorm_backward(dx, arena.g(id.w), arena.g(id.b), dout, x, arena.p(id.w), mean, rstd, N, C, mode);
      break;
    case Norm::rms: rmsnorm_backward(dx, arena.g(id.w), dout, x, arena.p(id.w), rstd, N, C, mode); break;
  }
}

// The rows of group g's heads in layer l's projections.
template <class T>
QkvWeights<T> Transformer<T>::qkv_weights(int l, const HeadGroup& g) const {
  const LayerIds& id = L_[l];
  const size_t C = size_t(cfg_.d_model), qo = size_t(g.q_off), vo = size_t(g.v_off);
  QkvWeights<T> w;
  if (cfg_.dot_product)
    w.wq = arena.p(id.qw) + qo * C, w.bq = arena.p(id.qb) + qo, w.wk = arena.p(id.kw) + qo * C, w.bk = arena.p(id.kb) + qo;
  w.wv = arena.p(id.vw) + vo * C, w.bv = arena.p(id.vb) + vo;
  return w;
}

template <class T>
QkvGrads<T> Transformer<T>::qkv_grads(int l, const HeadGroup& g) {
  const LayerIds& id = L_[l];
  const size_t C = size_t(cfg_.d_model), qo = size_t(g.q_off), vo = size_t(g.v_off);
  QkvGrads<T> r;
  if (cfg_.dot_product)
    r.wq = arena.g(id.qw) + qo * C, r.bq = arena.g(id.qb) + qo, r.wk = arena.g(id.kw) + qo * C, r.bk = arena.g(id.kb) + qo;
  r.wv = arena.g(id.vw) + vo * C, r.bv = arena.g(id.vb) + vo;
  return r;
}

template <class T>
void Transformer<T>::attention_fwd(int l, int B, int Tn) {
  LayerActs& a = acts_[l];
  const LayerIds& id = L_[l];
  const std::vector<HeadGroup>& groups = groups_[size_t(l)];
  const int C = cfg_.d_model, N = B * Tn, qd = qk_width(cfg_, l), H = cfg_.heads[l];
  const bool has_bias = cfg_.rpe != Rpe::none;
  if (has_bias) posbias_forward(a.bias.data(), RpeSpec{cfg_.rpe, cfg_.rpe_learnable, cfg_.rpe_buckets, cfg_.rpe_max_distance},
                                id.rpe >= 0 ? arena.p(id.rpe) : nullptr, H, Tn);
  // Group g's bias rows, lse block ([B, H_g, T] after the groups before it) and output columns.
  auto bias = [&](const HeadGroup& g) { return has_bias ? a.bias.data() + size_t(g.h0) * Tn : nullptr; };
  auto lse = [&](const HeadGroup& g) { return a.lse.data() + size_t(B) * g.h0 * Tn; };
  if (last_ && l + 1 == cfg_.layers) {
    PROFILE_SCOPE("fwd.attention");
    for (size_t i = 0; i < groups.size(); ++i) {
      const HeadGroup& g = groups[i];
      last_attention_forward(a.att.data() + g.v_off, norm_in(a.n1, a.h_in), qkv_weights(l, g), bias(g), dims(l, g, B, Tn), C,
                             last_state_[i]);
    }
    for (int b = 0; b < B; ++b)  // the residual input at the last rows
      std::copy_n(a.h_in.data() + (size_t(b) * Tn + Tn - 1) * C, C, h_last_.data() + size_t(b) * C);
    return;
  }
  {
    PROFILE_SCOPE("fwd.qkv");
    const int ld = (cfg_.dot_product ? 2 * qd : 0) + v_width(cfg_, l);
    linear_forward(a.qkv.data(), norm_in(a.n1, a.h_in), arena.p(id.qkv_w), arena.p(id.qkv_b), N, C, ld);
  }
  PROFILE_SCOPE("fwd.attention");
  for (const HeadGroup& g : groups) {
    const T* q = cfg_.dot_product ? a.qkv.data() + g.q_off : nullptr;
    const T* k = cfg_.dot_product ? a.qkv.data() + qd + g.q_off : nullptr;
    const T* v = a.qkv.data() + (cfg_.dot_product ? 2 * qd : 0) + g.v_off;
    attention_forward(a.att.data() + g.v_off, lse(g), q, k, v, bias(g), dims(l, g, B, Tn), work_);
  }
}

template <class T>
const T* Transformer<T>::forward(const T* x, const int* tokens, int B, int Tn) {
  B_ = B; T_ = Tn; x_ = x; tokens_ = tokens; last_ = want_last_;
  const int C = cfg_.d_model, N = B * Tn;
  T* h = cfg_.layers > 0 ? acts_[0].h_in.data() : h_final_.data();
  // Input map and absolute positions.
  if (cfg_.vocab > 0) {
    const T* E = arena.p(embed_w_);
    for (int n = 0; n < N; ++n) std::memcpy(h + size_t(n) * C, E + size_t(tokens[n]) * C, sizeof(T) * C);
  } else {
    linear_forward(h, x, arena.p(embed_w_), arena.p(embed_b_), N, cfg_.d_in, C);
  }
  const T* pos = cfg_.pos == Pos::learned ? arena.p(pos_) : cfg_.pos == Pos::sinusoidal ? sin_table_.data() : nullptr;
  if (pos)
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < Tn; ++t)
        for (int c = 0; c < C; ++c) h[(size_t(b) * Tn + t) * C + c] += pos[size_t(t) * C + c];

  int R = N;  // rows past the attention: every position, or one per sequence (last-position mode)
  for (int l = 0; l < cfg_.layers; ++l) {
    LayerActs& a = acts_[l];
    const LayerIds& id = L_[l];
    const int vd = v_width(cfg_, l), m = cfg_.ffn[l];
    {
      PROFILE_SCOPE("fwd.norm");
      norm_fwd(id.n1, a.n1.data(), a.n1_mean.data(), a.n1_rstd.data(), a.h_in.data(), N);
    }
    attention_fwd(l, B, Tn);
    if (last_ && l + 1 == cfg_.layers) R = B;
    {
      PROFILE_SCOPE("fwd.out_proj");  // h_mid = h_in + att Wo^T + bo
      linear_forward(a.h_mid.data(), a.att.data(), arena.p(id.ow), arena.p(id.ob), R, vd, C,
                     R == N ? a.h_in.data() : h_last_.data());
    }
    T* next = l + 1 < cfg_.layers ? acts_[l + 1].h_in.data() : h_final_.data();
    if (m > 0) {
      { PROFILE_SCOPE("fwd.norm"); norm_fwd(id.n2, a.n2.data(), a.n2_mean.data(), a.n2_rstd.data(), a.h_mid.data(), R); }
      { PROFILE_SCOPE("fwd.ffn1"); linear_forward(a.f1.data(), norm_in(a.n2, a.h_mid), arena.p(id.f1w), arena.p(id.f1b), R, C, m); }
      { PROFILE_SCOPE("fwd.act"); act_forward(cfg_.ffn_activation, a.f1a.data(), a.f1.data(), size_t(R) * m); }
      PROFILE_SCOPE("fwd.ffn2");
      linear_forward(next, a.f1a.data(), arena.p(id.f2w), arena.p(id.f2b), R, m, C, a.h_mid.data());
    } else {
      std::memcpy(next, a.h_mid.data(), sizeof(T) * size_t(R) * C);
    }
  }
  PROFILE_SCOPE("fwd.head");
  norm_fwd(nf_, nf_out_.data(), nf_mean_.data(), nf_rstd_.data(), h_final_.data(), R);
  linear_forward(out_.data(), norm_in(nf_out_, h_final_), arena.p(head_w_), arena.p(head_b_), R, C, out_dim());
  return out_.data();
}

// dh_ holds dL/d(output of layer l's attention block) at its rows (B compact rows for the
// last layer in last-position mode); on return, dL/d(input of layer l) at every row.
template <class T>
void Transformer<T>::attention_bwd(int l, int B, int Tn) {
  LayerActs& a = acts_[l];
  const LayerIds& id = L_[l];
  const std::vector<HeadGroup>& groups = groups_[size_t(l)];
  const int C = cfg_.d_model, N = B * Tn, qd = qk_width(cfg_, l), vd = v_width(cfg_, l), H = cfg_.heads[l];
  const bool lastq = last_ && l + 1 == cfg_.layers;
  const int R = lastq ? B : N;
  {
    PROFILE_SCOPE("bwd.out_proj");
    linear_backward(datt_.data(), arena.g(id.ow), arena.g(id.ob), dh_.data(), a.att.data(), arena.p(id.ow), R, vd, C,
                    GradMode::set);
  }
  const bool has_bias = cfg_.rpe != Rpe::none;
  const RpeSpec spec{cfg_.rpe, cfg_.rpe_learnable, cfg_.rpe_buckets, cfg_.rpe_max_distance};
  if (has_bias) std::fill_n(dbias_.begin(), size_t(H) * Tn, T(0));
  auto dbias = [&](const HeadGroup& g) { return has_bias ? dbias_.data() + size_t(g.h0) * Tn : nullptr; };
  if (lastq) {
    {
      PROFILE_SCOPE("bwd.attention");
      std::copy_n(dh_.data(), size_t(B) * C, dh_last_.data());  // the residual's gradient at the last rows
      for (size_t i = 0; i < groups.size(); ++i) {
        const HeadGroup& g = groups[i];
        last_attention_backward(dnorm(GradMode::set).first, qkv_grads(l, g), dbias(g), datt_.data() + g.v_off,
                                norm_in(a.n1, a.h_in), qkv_weights(l, g), dims(l, g, B, Tn), C, last_state_[i],
                                i == 0 ? GradMode::set : GradMode::add);
      }
      if (id.rpe >= 0) posbias_backward(arena.g(id.rpe), spec, dbias_.data(), H, Tn);
    }
    PROFILE_SCOPE("bwd.norm");
    norm_bwd(id.n1, dh_.data(), dn_.data(), a.h_in.data(), a.n1_mean.data(), a.n1_rstd.data(), N, GradMode::set);
    for (int b = 0; b < B; ++b) {
      T* row = dh_.data() + (size_t(b) * Tn + Tn - 1) * C;
      const T* g = dh_last_.data() + size_t(b) * C;
      for (int c = 0; c < C; ++c) row[c] += g[c];
    }
    return;
  }
  T* dq = dqkv_.data();
  const size_t v0 = cfg_.dot_product ? 2 * size_t(qd) : 0;  // first v column of the fused projection
  {
    PROFILE_SCOPE("bwd.attention");
    for (const HeadGroup& g : groups) {  // each group sets its own columns of dq, dk, dv
      const T* q = cfg_.dot_product ? a.qkv.data() + g.q_off : nullptr;
      attention_backward(dq + g.q_off, dq + qd + g.q_off, dq + v0 + g.v_off, dbias(g), datt_.data() + g.v_off,
                         a.att.data() + g.v_off, a.lse.data() + size_t(B) * g.h0 * Tn, q, q ? q + qd : nullptr,
                         a.qkv.data() + v0 + g.v_off, has_bias ? a.bias.data() + size_t(g.h0) * Tn : nullptr,
                         dims(l, g, B, Tn), work_, GradMode::set);
    }
    if (id.rpe >= 0) posbias_backward(arena.g(id.rpe), spec, dbias_.data(), H, Tn);
  }
  {
    PROFILE_SCOPE("bwd.qkv");
    const auto [dx, mode] = dnorm(GradMode::add);
    linear_backward(dx, arena.g(id.qkv_w), arena.g(id.qkv_b), dq, norm_in(a.n1, a.h_in), arena.p(id.qkv_w), N, C,
                    int(v0) + vd, mode);
  }
  PROFILE_SCOPE("bwd.norm");
  norm_bwd(id.n1, dh_.data(), dn_.data(), a.h_in.data(), a.n1_mean.data(), a.n1_rstd.data(), N);
}

// Every gradient buffer is set by its first writer (GradMode::set), so none is zeroed.
template <class T>
void Transformer<T>::backward(const T* dyhat) {
  const int B = B_, Tn = T_, C = cfg_.d_model, N = B * Tn;
  constexpr GradMode kSet = GradMode::set;
  int R = last_ ? B : N;  // rows of the head and of the last layer above its attention
  {
    PROFILE_SCOPE("bwd.head");
    linear_backward(dnorm(kSet).first, arena.g(head_w_), arena.g(head_b_), dyhat, norm_in(nf_out_, h_final_),
                    arena.p(head_w_), R, C, out_dim(), kSet);
    norm_bwd(nf_, dh_.data(), dn_.data(), h_final_.data(), nf_mean_.data(), nf_rstd_.data(), R, kSet);
  }
  for (int l = cfg_.layers - 1; l >= 0; --l) {
    LayerActs& a = acts_[l];
    const LayerIds& id = L_[l];
    const int m = cfg_.ffn[l];
    if (l + 1 < cfg_.layers) R = N;
    // dh holds dL/d(output of layer l). FFN branch; the residual passes dh through unchanged.
    if (m > 0) {
      {
        PROFILE_SCOPE("bwd.ffn2");
        linear_backward(df_.data(), arena.g(id.f2w), arena.g(id.f2b), dh_.data(), a.f1a.data(), arena.p(id.f2w), R, m, C,
                        kSet);
      }
      { PROFILE_SCOPE("bwd.act"); act_backward(cfg_.ffn_activation, df_.data(), df_.data(), a.f1.data(), size_t(R) * m, kSet); }
      {
        PROFILE_SCOPE("bwd.ffn1");
        const auto [dx, mode] = dnorm(GradMode::add);
        linear_backward(dx, arena.g(id.f1w), arena.g(id.f1b), df_.data(), norm_in(a.n2, a.h_mid), arena.p(id.f1w), R, C, m,
                        mode);
      }
      PROFILE_SCOPE("bwd.norm");
      norm_bwd(id.n2, dh_.data(), dn_.data(), a.h_mid.data(), a.n2_mean.data(), a.n2_rstd.data(), R);
    }
    attention_bwd(l, B, Tn);
  }
  // Positions and input map.
  PROFILE_SCOPE("bwd.embed");
  if (pos_ >= 0) {
    T* gp = arena.g(pos_);
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < Tn; ++t)
        for (int c = 0; c < C; ++c) gp[size_t(t) * C + c] += dh_[(size_t(b) * Tn + t) * C + c];
  }
  if (cfg_.vocab > 0) {
    T* gE = arena.g(embed_w_);
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < C; ++c) gE[size_t(tokens_[n]) * C + c] += dh_[size_t(n) * C + c];
  } else {
    linear_backward<T>(nullptr, arena.g(embed_w_), arena.g(embed_b_), dh_.data(), x_, arena.p(embed_w_), N, cfg_.d_in, C);
  }
}

template class Transformer<float>;
template class Transformer<double>;

void transformer_keys(Keys& k, ModelConfig& m) {
  k.integer("d_model", m.d_model, 1, 1 << 16);
  k.integer("layers", m.layers, 1, 1024);
  if (!k.reading()) {
    k.ints("heads", m.heads, 1);
    k.int_lists("head_dim", m.head_dim, 1);
    k.int_lists("value_dim", m.value_dim, 1);
    k.ints("ffn", m.ffn, 0);
  } else {
    // An integer for every layer, or one entry per layer.
    auto per_layer = [&](const char* key, size_t n) {
      if (int(n) != m.layers)
        k.fail(key, "has " + std::to_string(n) + " entries but model.layers = " + std::to_string(m.layers) +
                        " (give one entry per layer, or a single integer; one layer's per-head sizes are a nested list, "
                        "e.g. [[16, 8]])");
    };
    std::vector<int> heads = {4}, ffn = {4 * m.d_model};
    k.ints("heads", heads, 1);  // H_l
    if (heads.size() == 1) heads.assign(size_t(m.layers), heads[0]);
    per_layer("heads", heads.size());
    // Head sizes: per layer an integer (every head) or a list with one per head.
    auto per_head = [&](const char* key, std::vector<std::vector<int>>& v) {
      if (v.size() == 1) v.assign(size_t(m.layers), v[0]);
      per_layer(key, v.size());
      for (size_t l = 0; l < v.size(); ++l) {
        if (v[l].size() == 1) v[l].assign(size_t(heads[l]), v[l][0]);
        if (int(v[l].size()) != heads[l])
          k.fail(key, "layer " + std::to_string(l) + " lists " + std::to_string(v[l].size()) + " heads [" + join_ints(v[l]) +
                          "] but model.heads gives it " + std::to_string(heads[l]));
      }
    };
    std::vector<std::vector<int>> head_dim, value_dim;
    if (k.int_lists("head_dim", head_dim, 1)) per_head("head_dim", head_dim);  // d_l,h; default d_model / H_l
    else for (int h : heads) head_dim.push_back(std::vector<int>(size_t(h), std::max(1, m.d_model / h)));
    if (k.int_lists("value_dim", value_dim, 1)) per_head("value_dim", value_dim);  // default head_dim
    else value_dim = head_dim;
    k.ints("ffn", ffn, 0);  // FFN width per layer; 0 = no FFN
    if (ffn.size() == 1) ffn.assign(size_t(m.layers), ffn[0]);
    per_layer("ffn", ffn.size());
    m.heads = heads;
    m.head_dim = head_dim;
    m.value_dim = value_dim;
    m.ffn = ffn;
  }
  enum_choice(k, "rpe", m.rpe, {{"none", Rpe::none}, {"lin", Rpe::lin}, {"log", Rpe::log}, {"t5", Rpe::t5}});
  k.boolean("rpe_learnable", m.rpe_learnable);  // lin: learn p_h, or keep the ALiBi slopes
  k.integer("rpe_buckets", m.rpe_buckets, 2, 1 << 16);
  k.integer("rpe_max_distance", m.rpe_max_distance, 2);
  if (k.reading() && m.rpe_max_distance <= m.rpe_buckets / 2)
    k.fail("rpe_max_distance", "must be > rpe_buckets/2 (" + std::to_string(m.rpe_buckets / 2) + ")");
  enum_choice(k, "pos", m.pos, {{"none", Pos::none}, {"sinusoidal", Pos::sinusoidal}, {"learned", Pos::learned}});
  k.boolean("dot_product", m.dot_product);  // false: DP-free, the scores are the positional bias alone
  enum_choice(k, "norm", m.norm, {{"none", Norm::none}, {"layer", Norm::layer}, {"rms", Norm::rms}});
  k.number("score_scale", m.score_scale, 0.0);  // <= 0: 1/sqrt(head_dim)
  // > 0: bounded logits, every score s becomes c tanh(s / c) (paper 1's Theorem 5.1 regime);
  // absent: no cap (written only when set).
  if (k.reading() || m.logit_cap > 0) k.number("logit_cap", m.logit_cap, 0.0, true);
  enum_choice(k, "ffn_activation", m.ffn_activation, {{"gelu", Act::gelu}, {"relu", Act::relu}, {"tanh", Act::tanh}});
}

}  // namespace attnlab
