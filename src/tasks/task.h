#pragma once
// A task makes batches of sequences. Every sample is a pure function of (seed, split, index),
// so datasets are index ranges, never stored, and the splits never share a sample.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/run_config.h"
#include "io/config_keys.h"

namespace attnlab {

enum class Split { train = 0, val = 1, test = 2 };

struct Batch {
  int B = 0, T = 0;
  std::vector<float> x;       // [B, T, d_in] real inputs (empty for token tasks)
  std::vector<int> tokens;    // [B, T] token inputs (empty for real tasks)
  std::vector<float> y;       // [B, T, d_out] real targets
  std::vector<int> targets;   // [B, T] token targets
  std::vector<float> mask;    // [B, T] 1 where the loss counts
  // Input channels [shared_from, d_in) are the same in every sequence at each position (e.g.
  // features of the position only); -1: no such channels. Models may compute their terms once.
  int shared_from = -1;

  // Shapes a batch of real inputs [B, T, d_in] with n_y targets and n_mask mask entries, every
  // target 0 and every mask entry `mask_value`; no token fields. Reuses the vectors' storage.
  void shape_real(int b, int t, int d_in, size_t n_y, size_t n_mask, float mask_value) {
    B = b;
    T = t;
    x.resize(size_t(b) * t * d_in);
    y.assign(n_y, 0.f);
    mask.assign(n_mask, mask_value);
    tokens.clear();
    targets.clear();
    shared_from = -1;
  }
};

// A linear lag target y_t = A sum_{s<=t} R(t, s) x_{t-s}, x and y scalar: R(t, s) = r(s) /
// sum_{s'<=t} r(s') (normalized) or r(s), counted at the positions (train/best_fit.h).
struct LagTarget {
  std::vector<double> r;        // r(s), s = 0..T-1, >= 0
  bool normalized = false;
  std::vector<int> positions;   // the positions t whose error counts, ascending, in [0, T)
};

class Task {
 public:
  virtual ~Task() = default;
  virtual int d_in() const = 0;
  virtual int d_out() const = 0;
  virtual int vocab() const { return 0; }  // > 0 for token tasks
  // One target per sequence (predicted at the last position): y is [B, 1, d_out], mask [B, 1].
  virtual bool last_only() const { return false; }
  // The task's target as a LagTarget; false if it is not one.
  virtual bool lag_target(LagTarget&) const { return false; }
  // Fill `batch` with the samples `indices[0..B)` of `split`.
  virtual void fill(Split split, const int64_t* indices, int B, Batch& batch) const = 0;
};

// Builds the task named by cfg.kind (the config was validated before).
std::unique_ptr<Task> make_task(const TaskConfig& cfg, uint64_t seed);
// The registry of task families and their keys (task.kind selects one).
const std::vector<KindKeys<TaskConfig>>& task_kinds();

}  // namespace attnlab
