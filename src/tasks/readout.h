#pragma once
// The readout f of the memory tasks (sparse_memory, adaptive_memory, kernel_memory):
// y = f(z), with z the M retrieved memories concatenated (n = |z| values), fixed at task
// construction from the task's seed:
//   linear:   y = A z, A ~ N(0, 1/n) (Var y_j about 1 for unit-variance z)
//   mlp:      y = a^T tanh(W z + c), W ~ N(0, 1/n), c ~ N(0, 0.01), a ~ N(0, 1/hidden)
//   deep_mlp: y = a^T h3, h_l = tanh(W_l h_{l-1} + c_l), h_0 = z, three tanh layers of width
//             hidden, W_1 ~ N(0, 2.25/n), W_2, W_3 ~ N(0, 2.25/hidden) (gain 1.5: a more
//             nonlinear function than mlp), c_l ~ N(0, 0.01), a ~ N(0, 1/hidden)
//   parity:   y = prod_i sign(z_i)  (for +-1 inputs: the parity of the lagged signs)
//   majority: y = sign(sum_i sign(z_i)), 0 on a tie
//   sum:      y = sum_i z_i / sqrt(n)  (every memory weighs the same; missing one of M
//             unit-variance memories costs 1/M of the target's variance)
// parity, majority and sum have one output (d_out = 1).
#include <cstdint>
#include <string>
#include <vector>

namespace attnlab {

class Readout {
 public:
  // prefix names the random streams ("sparse_memory": its A is "sparse_memory/A").
  Readout(const std::string& kind, int n, int d_out, int hidden, uint64_t seed, const std::string& prefix);
  void apply(const float* z, float* y) const;  // z [n] -> y [d_out]; allocates nothing
  static const std::vector<std::string>& kinds();

 private:
  std::string kind_;
  int n_, d_out_, hidden_;
  std::vector<float> A_;                       // linear: [d_out, n]
  std::vector<std::vector<float>> W_, c_;      // mlp / deep_mlp layers: [hidden, fan_in], [hidden]
  std::vector<float> a_;                       // [d_out, hidden]
};

}  // namespace attnlab
