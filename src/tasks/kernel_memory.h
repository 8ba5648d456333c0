#pragma once
// Task `kernel_memory` (paper 2: essentially sparse memory). x_t i.i.d. in R^{d_in}, N(0, 1)
// or +-1 by task.inputs; y_t = f((x * rho_1)(t), ..., (x * rho_M)(t)) with
// (x * rho)(t) = sum_{s=0}^{t} rho(s) x_{t-s} / sum_{s=0}^{t} rho(s): the kernel
// rho_m(s) = e^{-beta_m s} (decay = "exp", light tail) or (1 + s)^{-beta_m} ("poly", heavy
// tail), truncated at the sequence start and normalized to unit mass over what remains. (A
// DP-free attention head with the matching bias, lin-type -p s or log-type -p log(1 + s),
// computes exactly this weighted mean at every t; normalizing over all s instead would give
// early positions a scale no softmax has.) f is a readout of tasks/readout.h. The loss
// counts at positions t >= task.loss_from (default 0: every position); with positions =
// "last", only the last position has a target (one per sequence: the RNN family can learn it).
#include "io/config_keys.h"
#include "tasks/readout.h"
#include "tasks/task.h"

namespace attnlab {

class KernelMemoryTask : public Task {
 public:
  KernelMemoryTask(const TaskConfig& cfg, uint64_t seed);
  int d_in() const override { return cfg_.d_in; }
  int d_out() const override { return cfg_.d_out; }
  bool last_only() const override { return cfg_.positions == "last"; }
  void fill(Split split, const int64_t* indices, int B, Batch& batch) const override;
  bool lag_target(LagTarget& out) const override;  // one memory, d_in = d_out = 1, linear readout
  // rho_m(s), s = 0..seq_len-1, before normalization (m-th memory).
  const std::vector<double>& kernel(int m) const { return rho_[size_t(m)]; }

 private:
  TaskConfig cfg_;
  uint64_t seed_;
  std::vector<std::vector<double>> rho_;
  Readout f_;
};

// Its own config keys (task.d_in, d_out, memories, decay, beta, and the readout's).
void kernel_memory_keys(Keys& k, TaskConfig& c);

}  // namespace attnlab
