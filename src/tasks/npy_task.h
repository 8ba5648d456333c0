#pragma once
// Task `npy`: the user's own data from NumPy .npy files (io/npy.h).
//   task.inputs  = "x.npy"  [N, T, d_in] float32/float64 inputs, or [N, T] integer tokens
//   task.targets = "y.npy"  [N, T, d_out] a target at every position, [N, d_out] one target
//                           per sequence (predicted at the last position), or [N, T] integer
//                           tokens (with token inputs: next-token style, cross-entropy)
//   validation: task.val_inputs / task.val_targets (same layout), or else the last
//   round(N * task.val_fraction) rows of the files (shuffle the rows first if they are ordered).
// seq_len, d_in, d_out, vocab, per_sequence, n_train and n_val are derived from the files
// (written into the resolved config, so a checkpoint describes its model without them).
// Relative paths are taken from the working directory and written out absolute.
#include <memory>

#include "io/config_keys.h"
#include "tasks/task.h"

namespace attnlab {

struct NpyData;

class NpyTask : public Task {
 public:
  explicit NpyTask(const TaskConfig& cfg);
  ~NpyTask() override;
  int d_in() const override { return cfg_.vocab > 0 ? 0 : cfg_.d_in; }
  int d_out() const override { return cfg_.d_out; }
  int vocab() const override { return cfg_.vocab; }
  bool last_only() const override { return cfg_.per_sequence; }
  void fill(Split split, const int64_t* indices, int B, Batch& batch) const override;

 private:
  TaskConfig cfg_;
  std::shared_ptr<const NpyData> data_;
};

void npy_keys(Keys& k, TaskConfig& c);

// While alive, reading a config of task `npy` does not open its files and trusts the derived
// values the config gives (a checkpoint's model, for predictions on other inputs).
struct NpyShapesFromConfig {
  NpyShapesFromConfig();
  ~NpyShapesFromConfig();
};

}  // namespace attnlab
