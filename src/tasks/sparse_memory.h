#pragma once
// Task `sparse_memory`: x_t i.i.d., N(0, I_{d_in}) (inputs = "gaussian") or uniform +-1
// signs (inputs = "sign"); y_t = f(x_{t-T_1}, ..., x_{t-T_M}) for fixed lags T_m, with f a
// readout of tasks/readout.h (linear, mlp, deep_mlp, parity, majority) of the concatenated
// lagged inputs. The loss counts only positions t >= max lag and t >= task.loss_from; with positions = "last", only
// the last position has a target (one per sequence: the RNN family can learn it too).
#include "tasks/readout.h"
#include "tasks/task.h"
#include "io/config_keys.h"

namespace attnlab {

class SparseMemoryTask : public Task {
 public:
  SparseMemoryTask(const TaskConfig& cfg, uint64_t seed);
  int d_in() const override { return cfg_.d_in; }
  int d_out() const override { return cfg_.d_out; }
  bool last_only() const override { return cfg_.positions == "last"; }
  void fill(Split split, const int64_t* indices, int B, Batch& batch) const override;
  bool lag_target(LagTarget& out) const override;  // one lag, d_in = d_out = 1, linear readout
  // The target of one position, from the concatenated lagged inputs z [M*d_in].
  void readout(const float* z, float* y) const { f_.apply(z, y); }

 private:
  TaskConfig cfg_;
  uint64_t seed_;
  int max_lag_ = 0;
  Readout f_;
};

// The input values of the memory tasks: N(0, 1) (gaussian) or uniform +-1 (sign), a pure
// function of (seed, stream, index).
float memory_input(bool sign, uint64_t seed, uint64_t stream, uint64_t index);
// x[i] = memory_input(sign, seed, stream, first + i) for i < n (the gaussian ones drawn at once
// with rng_normals: the same floats, several times faster).
void memory_inputs(bool sign, uint64_t seed, uint64_t stream, uint64_t first, size_t n, float* x);

// Its own config keys (task.d_in, d_out, lags, and the readout's).
void sparse_memory_keys(Keys& k, TaskConfig& c);
// The keys of the inputs and the readout, shared by the memory tasks: task.inputs, readout,
// hidden.
void readout_keys(Keys& k, TaskConfig& c);
// task.loss_from (sparse_memory, kernel_memory).
void loss_from_key(Keys& k, TaskConfig& c);

}  // namespace attnlab
