#pragma once
// Task `sparse_memory`: x_t ~ N(0, I_{d_in}) i.i.d., y_t = f(x_{t-T_1}, ..., x_{t-T_M}) for
// fixed lags T_m. Readout `linear`: y = A z with z the concatenated lagged inputs and fixed
// A ~ N(0, 1/(M d_in)) (so Var y_j is about 1); `mlp`: y = a^T tanh(W z + c), a fixed random
// 2-layer tanh network of width `hidden`. The loss counts only positions t >= max lag.
#include "tasks/task.h"
#include "io/config_keys.h"

namespace attnlab {

class SparseMemoryTask : public Task {
 public:
  SparseMemoryTask(const TaskConfig& cfg, uint64_t seed);
  int d_in() const override { return cfg_.d_in; }
  int d_out() const override { return cfg_.d_out; }
  void fill(Split split, const int64_t* indices, int B, Batch& batch) const override;
  // The target of one position, from the concatenated lagged inputs z [M*d_in].
  void readout(const float* z, float* y) const;

 private:
  TaskConfig cfg_;
  uint64_t seed_;
  int max_lag_ = 0;
  std::vector<float> A_;       // linear: [d_out, M*d_in]
  std::vector<float> W_, c_;   // mlp: [hidden, M*d_in], [hidden]
  std::vector<float> a_;       // mlp: [d_out, hidden]
};

// Its own config keys (task.d_in, d_out, lags, readout, hidden).
void sparse_memory_keys(Keys& k, TaskConfig& c);

}  // namespace attnlab
