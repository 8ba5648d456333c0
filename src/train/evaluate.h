#pragma once
// Evaluation: the loss of a model on a batch or a whole split, paper 1's attention probes as
// JSON, and `attnlab eval` (a checkpoint evaluated with the config in its metadata).
#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/run_config.h"
#include "kernels/loss.h"
#include "models/model.h"
#include "tasks/task.h"

namespace attnlab {

// Runs the model on a batch and returns the loss; with grad, also runs backward (arena grads
// are zeroed first). Per-sequence tasks read the model's output at the last position (a
// Transformer then computes its last layer at that position only).
class LossRunner {
 public:
  LossRunner(Model<float>& m, const Task& task, const std::string& loss) : m_(m), task_(task), loss_(loss) {}
  // pos (forward only, per-position targets): adds each position t's loss times its mask to
  // (*pos)[t] and the mask to (*pos)[T + t] (the per-position validation loss).
  double run(const Batch& b, bool grad, std::vector<double>* pos = nullptr) {
    const int B = b.B, Tn = b.T, D = m_.out_dim();
    m_.set_shared_channels(b.shared_from);
    if (grad && loss_ != "ce" && D == 1 && task_.last_only() && m_.last_only() && !b.x.empty()) {
      // MSE of one output per sequence: the model may run forward and backward in one pass.
      double count = 0;
      for (int i = 0; i < B; ++i) count += b.mask[size_t(i)];
      const double coef = (loss_ == "half_mse" ? 1.0 : 2.0) / (count > 0 ? count : 1.0);
      m_.arena.zero_grad();
      if (const float* out = m_.forward_backward_mse(b.x.data(), B, Tn, b.y.data(), b.mask.data(), float(coef)))
        return mse_forward_backward<float>(nullptr, out, b.y.data(), b.mask.data(), B, 1);
    }
    // A per-position model computes the last position only where it can (the Transformer's
    // last-position mode): then its output is already one row per sequence.
    const bool compact = !m_.last_only() && m_.set_last_position_only(task_.last_only()) && task_.last_only();
    const float* out = m_.forward(b.x.empty() ? nullptr : b.x.data(), b.tokens.empty() ? nullptr : b.tokens.data(), B, Tn);
    const bool pick_last = task_.last_only() && !m_.last_only() && !compact;
    const int P = task_.last_only() ? 1 : Tn;  // positions with targets
    const float* yhat = out;
    if (pick_last) {
      last_.resize(size_t(B) * D);
      for (int b2 = 0; b2 < B; ++b2)
        std::copy_n(out + (size_t(b2) * Tn + Tn - 1) * D, D, last_.data() + size_t(b2) * D);
      yhat = last_.data();
    }
    const int N = B * P;
    float* dy = nullptr;
    if (grad) { dy_.resize(size_t(N) * D); dy = dy_.data(); }
    double l = loss_ == "ce" ? ce_forward_backward(dy, yhat, b.targets.data(), b.mask.data(), N, D)
                             : mse_forward_backward(dy, yhat, b.y.data(), b.mask.data(), N, D);
    if (pos && P == Tn) accumulate_positions(*pos, yhat, b, N, D);
    if (!grad) return l;
    if (loss_ == "half_mse") for (float& g : dy_) g *= 0.5f;  // optimize MSE/2, report MSE
    m_.arena.zero_grad();
    if (pick_last) {
      full_.assign(size_t(B) * Tn * D, 0.f);
      for (int b2 = 0; b2 < B; ++b2)
        std::copy_n(dy_.data() + size_t(b2) * D, D, full_.data() + (size_t(b2) * Tn + Tn - 1) * D);
      m_.backward(full_.data());
    } else {
      m_.backward(dy_.data());
    }
    return l;
  }

 private:
  void accumulate_positions(std::vector<double>& pos, const float* yhat, const Batch& b, int N, int D) const {
    const int Tn = b.T;
    pos.resize(size_t(2) * Tn, 0.0);
    for (int n = 0; n < N; ++n) {
      const float w = b.mask[size_t(n)];
      if (!(w > 0)) continue;
      const double r = loss_ == "ce" ? position_loss<float>(yhat + size_t(n) * D, nullptr, b.targets[size_t(n)], D)
                                     : position_loss(yhat + size_t(n) * D, b.y.data() + size_t(n) * D, 0, D);
      pos[size_t(n % Tn)] += w * r;
      pos[size_t(Tn + n % Tn)] += w;
    }
  }

  Model<float>& m_;
  const Task& task_;
  std::string loss_;
  std::vector<float> last_, dy_, full_;
};

// The variance the MSE is compared with (`*_rel` = MSE / variance, the fraction of the
// target's variance left unexplained): the mean over output dimensions of each dimension's
// variance over the positions where the loss counts. The MSE averages over dimensions too,
// so predicting each dimension's mean gives rel 1 (a pooled variance would count the
// differences between the dimensions' means as variance). Token targets have none (0).
struct TargetMoments {
  explicit TargetMoments(int d_out) : sum(size_t(std::max(d_out, 0)), 0.0), sum2(sum) {}
  void add(const Batch& b);  // its real targets at positions with mask > 0
  double variance() const;
  std::vector<double> sum, sum2;  // per dimension
  double count = 0;               // positions
};

struct EvalResult {
  double loss = 0, target_var = 0;
  std::vector<double> pos;  // per-position targets: loss sums per position t, then mask sums ([2T])
};

// The validation loss by position, for tasks with a target at every position: under
// "val_loss_by_position" the mean loss at each position (null where no position carries
// loss), the means over the buckets [0, 4), [4, 16), [16, 64), ... (edges at powers of 4,
// the last one ending at T) as "val_loss_pos.<lo>_<hi>", and "val_loss_pos_ratio", the last
// bucket's mean over the one before it (below 1: the loss still falls at the far positions,
// where only context from far back can help). Buckets with no loss are left out; so is the
// ratio without two buckets.
void add_position_losses(nlohmann::ordered_json& j, const std::vector<double>& pos, bool by_position);

// The batches of one split, filled once and reused by every later evaluation (a run that
// validates after every update would otherwise rebuild them each step: at E4's shape the
// filling took longer than the forward). Kept only up to kMaxBytes.
struct EvalCache {
  static constexpr size_t kMaxBytes = size_t(256) << 20;
  std::vector<Batch> batches;
  bool full = false, off = false;  // every batch is in; too big to keep
};

// Mean loss over a whole split, in chunks of eval_batch; also the targets' variance. With
// `spread`, the chunks are shared out over the ranks of an MPI job (every rank must call it;
// all get the totals); the last chunk is rank 0's, so that its model holds the attention of
// the split's last sequences for the probes.
EvalResult evaluate(LossRunner& runner, const Task& task, Split split, int64_t n, int eval_batch,
                    EvalCache* cache = nullptr, bool spread = false);

// Paper 1's attention probes (models/model.h HeadProbe) as JSON: aggregates over every head
// (max |logit| is the max, the others are means), per-layer max |logit| and mean entropy
// ratio ("max_abs_logit.l0", ...), and every head under "heads".
void add_probes(nlohmann::ordered_json& j, const std::vector<HeadProbe>& ps);

// The config a checkpoint was trained with (its "config" metadata), with overrides applied.
RunConfig checkpoint_config(const std::string& path, const std::vector<std::string>& overrides);

// Loads the checkpoint into the model of cfg and evaluates it on the validation set (and the
// test set if task.n_test > 0): {"val_loss", ["val_rel"], ["val_bits_per_byte"], ["test_loss"],
// the probes, "params_total"}.
nlohmann::ordered_json evaluate_checkpoint(const RunConfig& cfg, const std::string& path);
// The same for the model of cfg whose parameters `fill` writes into its arena.
nlohmann::ordered_json evaluate_with(const RunConfig& cfg, const std::function<void(Arena<float>&)>& fill);

}  // namespace attnlab
