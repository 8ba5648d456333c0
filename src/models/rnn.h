#pragma once
// Recurrent models with backpropagation through time; one output per sequence:
//   f(X) = (1 / sqrt(m)) sum_i c_i h_{T,i},  h_0 = 0.
// - IndRNN (kind "indrnn"): h_t = sigma(W_in x_t + u (.) h_{t-1}), W_in [m, d], u [m].
// - Elman  (kind "rnn"):    h_t = sigma(W_in x_t + W_hh h_{t-1}), W_hh [m, m].
// sigma = tanh or erf(x / sqrt 2). Symmetric initialization (m even): units i < m/2 draw
// W_in rows ~ N(0, I_d), c_i = +-1, and u_i ~ N(0, 1) (u_init "normal") or +-1.5 ("pm1.5"),
// resp. W_hh = diag(A, A) with A ~ N(0, 1/(m/2)); units i >= m/2 copy unit i - m/2 with c
// negated, so f = 0 at initialization. "iid": every unit drawn independently (Elman: W_hh
// entries N(0, 1/m)). Parameters "W_in", "u" or "W_hh", "c".
#include "models/model.h"
#include "io/config_keys.h"

namespace attnlab {

template <class T>
class Rnn : public Model<T> {
 public:
  using Model<T>::arena;
  Rnn(const ModelConfig& cfg, int max_batch);
  void init(uint64_t seed) override;
  const T* forward(const T* x, const int* tokens, int B, int Tn) override;
  void backward(const T* dyhat) override;
  const T* forward_backward_mse(const T* x, int B, int Tn, const T* y, const T* mask, T coef) override;
  void set_shared_channels(int from) override { shared_ = from; }
  int out_dim() const override { return 1; }
  bool last_only() const override { return true; }
  ParamCounts counts() const override;
  std::vector<std::pair<std::string, std::vector<int>>> probe_groups() const override;
  std::vector<HeadSlice> head_slices() const override;

 private:
  const T* forward_ind();
  void backward_ind(const T* dy);
  // The register-blocked IndRNN (kernels/indrnn_blocked.h): float, tanh, 16 | m, d <= 32.
  bool blocked_ok() const;
  int units_padded() const;  // m, rounded up to a multiple of 16 on the blocked paths
  void transpose_input_weights();
  void add_blocked_grads(const void* acc, int blk);
  typedef float v16 __attribute__((vector_size(64)));
  std::vector<v16> bacc_;  // blocked partial gradients
  static constexpr int kChains = 8;  // sequences whose recurrences the blocked kernels interleave
  // Shared channels (kernels/shared_channels.h): the blocked IndRNN with P = shared_ private
  // channels, P in {1, 2, 4}, P < d.
  int shared_ = -1;
  bool shared_ok() const;
  void build_shared_tables(const T* x, int Tn);
  void add_shared_grads(const void* acc, const T* x, int Tn);
  std::vector<v16> tabs_;
  ModelConfig cfg_;
  bool ind_, erf_;
  int m_, d_, Win_ = -1, rec_ = -1, c_ = -1;
  int B_ = 0, T_ = 0;
  const T* x_ = nullptr;
  std::vector<T> wt_, part_;  // IndRNN scratch: W_in transposed, per-thread gradient partials
  std::vector<T> upad_, cpad_;  // u and c padded to units_padded()
  std::vector<T> z_, h_, out_, dz_, dh_;  // z, h: [T, B, m] (Elman, time-major) or [B, T, m] (IndRNN)
};

extern template class Rnn<float>;
extern template class Rnn<double>;

// Their own config keys: model.width, activation, init, and u_init (indrnn).
void indrnn_keys(Keys& k, ModelConfig& m);
void rnn_keys(Keys& k, ModelConfig& m);

}  // namespace attnlab
