#pragma once
// Task `retrieval` (paper 1's saturation task): a sequence of T = task.seq_len positions holds
// T - 1 random key-value pairs and then a query equal to one of the keys; the target, at the
// last position only, is that key's value. Keys k_i ~ N(0, I_{d_in} / d_in) (unit norm on
// average), values v_i ~ N(0, I_{d_out}), the queried index j uniform in 0..T-2. Inputs are
// x_i = [k_i, v_i, 0] for i < T - 1 and x_{T-1} = [k_j, 0, 1], so the model's input width is
// d_in + d_out + 1. One softmax head with W_Q W_K^T = c I retrieves v_j up to the weight its
// softmax leaves on the T - 2 other keys: as T grows the logits must grow like log T (or the
// key dimension with them) for the error to stay low, which is where saturation shows.
#include "io/config_keys.h"
#include "tasks/task.h"

namespace attnlab {

class RetrievalTask : public Task {
 public:
  RetrievalTask(const TaskConfig& cfg, uint64_t seed) : cfg_(cfg), seed_(seed) {}
  int d_in() const override { return cfg_.d_in + cfg_.d_out + 1; }
  int d_out() const override { return cfg_.d_out; }
  bool last_only() const override { return true; }
  void fill(Split split, const int64_t* indices, int B, Batch& batch) const override;
  // The index j of the queried pair in sample `index` of `split`.
  int64_t queried(Split split, int64_t index) const;

 private:
  TaskConfig cfg_;
  uint64_t seed_;
};

// Its own config keys (task.d_in: key dimension, task.d_out: value dimension).
void retrieval_keys(Keys& k, TaskConfig& c);

}  // namespace attnlab
