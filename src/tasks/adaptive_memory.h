#pragma once
// Task `adaptive_memory` (paper 2: memory positions that depend on the input). Token t
// carries a value z_t (value_dim numbers, N(0, 1) or +-1 by task.inputs) and a pointer k_t,
// uniform in {1..K} (K = task.max_pointer); the input is x_t = [z_t, onehot(k_t)], so
// d_in = value_dim + K. The target follows a chain of `hops` pointers (1 to 8): p_0 = t,
// p_j = p_{j-1} - k_{p_{j-1}}, and y_t = f(z_{p_1}, ..., z_{p_hops}); hops = 1 gives
// y_t = f(z_{t-k_t}), hops = 2 f(z_{t-k_t}, z_{t-k_t-k'}) with k' = k_{t-k_t}: each memory's
// position depends on the one before (paper 2's nested memory, hops = its nesting levels).
// f is a readout of tasks/readout.h. The loss counts the positions whose chain stays
// inside the sequence.
#include "io/config_keys.h"
#include "tasks/readout.h"
#include "tasks/task.h"

namespace attnlab {

class AdaptiveMemoryTask : public Task {
 public:
  AdaptiveMemoryTask(const TaskConfig& cfg, uint64_t seed);
  int d_in() const override { return cfg_.value_dim + cfg_.max_pointer; }
  int d_out() const override { return cfg_.d_out; }
  void fill(Split split, const int64_t* indices, int B, Batch& batch) const override;

 private:
  TaskConfig cfg_;
  uint64_t seed_;
  Readout f_;
};

// Its own config keys (task.value_dim, max_pointer, hops, d_out, and the readout's).
void adaptive_memory_keys(Keys& k, TaskConfig& c);

}  // namespace attnlab
