#pragma once
// Causal Transformer with per-layer heads H_l, head dimensions d_l and FFN widths m_l.
// Formula (docs/model.md is the full contract, checked by tests against PyTorch):
//   h0 = embed(x) + pos;  for each layer l (pre-norm):
//     h = h + Attn_l(Norm1_l(h));  h = h + FFN_l(Norm2_l(h))   (FFN skipped when m_l = 0)
//   yhat = NormF(h) W_head^T + b_head
// All parameters live in one Arena; forward() keeps the activations that backward() needs.
#include <cstdint>
#include "io/config_keys.h"
#include <string>
#include <utility>
#include <vector>

#include "models/model.h"
#include "core/run_config.h"
#include "kernels/attention.h"
#include "kernels/attention_last.h"

namespace attnlab {

template <class T>
class Transformer : public Model<T> {
 public:
  // max_batch bounds the batch of every forward call (activations are allocated once).
  Transformer(const ModelConfig& cfg, int max_batch);

  using Model<T>::arena;
  void init(uint64_t seed) override;  // every weight a pure function of (seed, name, index)
  ParamCounts counts() const override;

  // x: [B, T, d_in] (real inputs) or tokens: [B, T]; returns yhat [B, T, d_out | vocab].
  const T* forward(const T* x, const int* tokens, int B, int Tn) override;
  // dyhat: gradient of the loss w.r.t. the last forward's output; accumulates into arena grads.
  void backward(const T* dyhat) override;
  // Honoured: the last layer then computes its attention (kernels/attention_last.h), FFN,
  // norms and head for the last position only; the layers below still compute every row.
  // forward returns [B, 1, out_dim]; outputs and gradients are those of the full computation.
  bool set_last_position_only(bool on) override { want_last_ = on; return true; }

  std::vector<HeadProbe> head_probes(int max_seqs) const override;  // transformer_probes.cpp

  const ModelConfig& config() const { return cfg_; }
  int out_dim() const override { return cfg_.vocab > 0 ? cfg_.vocab : cfg_.d_out; }

 private:
  struct NormIds { int w = -1, b = -1; };
  struct LayerIds {
    NormIds n1, n2;
    int qw = -1, qb = -1, kw = -1, kb = -1, vw = -1, vb = -1, ow = -1, ob = -1, rpe = -1;
    int qkv_w = -1, qkv_b = -1;  // first of the adjacent q, k, v weights (biases): the fused projection
    int f1w = -1, f1b = -1, f2w = -1, f2b = -1;
  };
  // qkv: the fused projection [N, 2 sum d_k + sum d_v] (q | k | v columns, head after head; only v
  // without the dot product).
  struct LayerActs {
    std::vector<T> h_in, n1, n1_mean, n1_rstd, qkv, lse, att, h_mid, n2, n2_mean, n2_rstd, f1,
        f1a, bias;
  };

  NormIds add_norm(const std::string& name);
  void norm_fwd(const NormIds& id, T* out, T* mean, T* rstd, const T* x, int N);
  void norm_bwd(const NormIds& id, T* dx, const T* dout, const T* x, const T* mean, const T* rstd,
                int N, GradMode mode = GradMode::add);
  AttnDims dims(int l, const HeadGroup& g, int B, int Tn) const;  // group g of layer l's heads
  // A norm's output (its input without a norm: nothing is copied), and where the gradient
  // w.r.t. it goes with which mode: dn_ (set; norm_bwd then writes dh_ with `mode`), or
  // without a norm straight into dh_ with `mode`, where norm_bwd would have put it.
  const T* norm_in(const std::vector<T>& out, const std::vector<T>& in) const {
    return cfg_.norm == Norm::none ? in.data() : out.data();
  }
  std::pair<T*, GradMode> dnorm(GradMode mode) {
    return cfg_.norm == Norm::none ? std::pair<T*, GradMode>{dh_.data(), mode} : std::pair<T*, GradMode>{dn_.data(), GradMode::set};
  }
  QkvWeights<T> qkv_weights(int l, const HeadGroup& g) const;
  QkvGrads<T> qkv_grads(int l, const HeadGroup& g);
  // Layer l's attention into a.att and its output into the next layer's input (every row,
  // or the last row of each sequence in last-position mode: then rows B, compact).
  void attention_fwd(int l, int B, int Tn);
  void attention_bwd(int l, int B, int Tn);  // dh_ in, dh_ out (every row)

  ModelConfig cfg_;
  int max_batch_;
  int embed_w_ = -1, embed_b_ = -1, pos_ = -1, head_w_ = -1, head_b_ = -1;
  NormIds nf_;
  std::vector<LayerIds> L_;
  std::vector<std::vector<HeadGroup>> groups_;  // per layer: its heads' groups of equal sizes
  std::vector<LayerActs> acts_;
  std::vector<T> sin_table_;
  // last forward
  int B_ = 0, T_ = 0;
  bool want_last_ = false, last_ = false;  // last_: the last forward ran in last-position mode
  std::vector<LastAttnState<T>> last_state_;  // one per group of the last layer's heads
  std::vector<T> h_last_, dh_last_;  // [B, C]: the last layer's input and gradient at the last rows
  const T* x_ = nullptr;
  const int* tokens_ = nullptr;
  std::vector<T> h_final_, nf_out_, nf_mean_, nf_rstd_, out_;
  // backward scratch
  std::vector<T> dh_, dn_, datt_, dqkv_, df_, dbias_, work_;
};

extern template class Transformer<float>;
extern template class Transformer<double>;

// Its own config keys (model.d_model, layers, heads, head_dim, value_dim, ffn, rpe...,
// pos, dot_product, norm, score_scale, ffn_activation); per-layer keys resolve to lists.
void transformer_keys(Keys& k, ModelConfig& m);

}  // namespace attnlab
