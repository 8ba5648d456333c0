#pragma once
// The shallow multi-head Transformer of Arda, Cayci & Eryilmaz (AISTATS 2026):
//   a_i(X) = X softmax(s * X^T W_i x_T)   in R^d   (query = the last token x_T; s = score_scale, default 1)
//   h_i    = sigma(U_i^T a_i),             sigma = tanh or erf(x / sqrt 2)
//   f(X)   = (1 / sqrt(m)) sum_i c_i h_i
// with W_i in R^{d x d}, U_i in R^d, c_i in R, i = 1..m. Parameters "W" [m, d, d], "U" [m, d],
// "c" [m]. Symmetric initialization (m even): for i < m/2, W_i ~ N(0,1) entries, U_i ~ N(0, I),
// c_i = +-1; heads i >= m/2 copy head i - m/2 with c negated, so f = 0 at initialization.
// One output per sequence: forward returns [B, 1, 1].
#include "models/model.h"
#include "io/config_keys.h"

namespace attnlab {

template <class T>
class ShallowAttention : public Model<T> {
 public:
  using Model<T>::arena;
  ShallowAttention(const ModelConfig& cfg, int max_batch);
  void init(uint64_t seed) override;
  const T* forward(const T* x, const int* tokens, int B, int Tn) override;
  void backward(const T* dyhat) override;
  const T* forward_backward_mse(const T* x, int B, int Tn, const T* y, const T* mask, T coef) override;
  void set_shared_channels(int from) override { shared_ = from; }
  int out_dim() const override { return 1; }
  bool last_only() const override { return true; }
  ParamCounts counts() const override;
  std::vector<std::pair<std::string, std::vector<int>>> probe_groups() const override {
    // "memory": the parameters that carry the context (paper 3's E4 figure: W against the IndRNN's u)
    return {{"W", {W_}}, {"U", {U_}}, {"c", {c_}}, {"memory", {W_}}};
  }
  std::vector<HeadSlice> head_slices() const override;
  // Mean entropy of the attention rows, over heads and the first kEntropySeqs sequences.
  double attention_entropy() const override { return entropy_; }
  static constexpr int kEntropySeqs = 8;

 private:
  ModelConfig cfg_;
  int m_, d_, W_ = -1, U_ = -1, c_ = -1;
  bool erf_;
  double scale_;
  int B_ = 0, T_ = 0;
  const T* x_ = nullptr;
  bool blocked_ok() const;
  int heads_padded() const;  // m, rounded up to a multiple of 16 on the blocked paths
  void transpose_weights();
  void add_blocked_grads(const void* acc);
  // Shared channels (kernels/shared_channels.h): float, 16 | m, and P = shared_ private
  // channels with P in {1, 2, 4} and P < d.
  int shared_ = -1;
  bool shared_ok() const;
  void build_shared_tables(const T* x, int Tn);
  void add_shared_grads(const void* acc, const T* x, int Tn);
  // Attention of one sequence into thread-local buffers (heads innermost).
  void attend(const T* X, int Tn, T* q, T* P, T* A, T* z, T* mx, T* sum) const;
  // Saved per sequence: z and h = sigma(z) [B, m], out [B]; transposed weights Wt [d,d,m], Ut [d,m].
  std::vector<T> z_, h_, out_, Wt_, Ut_, cpad_;
  typedef float v16 __attribute__((vector_size(64)));
  std::vector<v16> fused_acc_, bacc_;  // partial gradients of forward_backward_mse, backward
  std::vector<v16> tabs_;              // shared-channel tables [m/16][table]
  double entropy_ = NAN;
};

extern template class ShallowAttention<float>;
extern template class ShallowAttention<double>;

// Its own config keys (model.width, activation, init, score_scale).
void shallow_attention_keys(Keys& k, ModelConfig& m);

}  // namespace attnlab
