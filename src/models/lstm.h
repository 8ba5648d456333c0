#pragma once
// LSTM with backpropagation through time; one output per sequence f(X) = (1/sqrt m) c^T h_T.
//   [i f g o]_t = [sig sig tanh sig](W_in x_t + W_hh h_{t-1} + b),  W_in [4m, d], W_hh [4m, m], b [4m]
//   C_t = f (.) C_{t-1} + i (.) g,  h_t = o (.) tanh(C_t),  h_0 = C_0 = 0.
// Initialization: W_in ~ N(0, 1), W_hh ~ N(0, 1/(m/2)) (block-diagonal over the two halves of
// the units for "symmetric"), b = 0 but the forget gate's b = 1, c = +-1. Symmetric: units
// i >= m/2 copy unit i - m/2 with c negated, so f = 0 at initialization. Projection per unit:
// its four W_in rows (group w), its four W_hh rows (group u), c_i (group c); b is not projected.
#include "models/model.h"
#include "io/config_keys.h"

namespace attnlab {

template <class T>
class Lstm : public Model<T> {
 public:
  using Model<T>::arena;
  Lstm(const ModelConfig& cfg, int max_batch);
  void init(uint64_t seed) override;
  const T* forward(const T* x, const int* tokens, int B, int Tn) override;
  void backward(const T* dyhat) override;
  int out_dim() const override { return 1; }
  bool last_only() const override { return true; }
  ParamCounts counts() const override;
  std::vector<std::pair<std::string, std::vector<int>>> probe_groups() const override {
    return {{"W_in", {Win_}}, {"W_hh", {Whh_}}, {"b", {b_}}, {"c", {c_}}};
  }
  std::vector<HeadSlice> head_slices() const override;

 private:
  ModelConfig cfg_;
  int m_, d_, Win_ = -1, Whh_ = -1, b_ = -1, c_ = -1;
  int B_ = 0, T_ = 0;
  const T* x_ = nullptr;
  std::vector<T> G_, C_, H_, out_, dG_, dH_, dC_;  // G: gate activations [T, B, 4m]; C, H: [T, B, m]
};

extern template class Lstm<float>;
extern template class Lstm<double>;

// Its own config keys (model.width, init).
void lstm_keys(Keys& k, ModelConfig& m);

}  // namespace attnlab
