#pragma once
// The interface every model implements (Transformer, shallow attention, RNNs): parameters in
// one Arena, forward keeping what backward needs, backward accumulating into arena grads.
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/rng.h"
#include "core/run_config.h"
#include "io/config_keys.h"

namespace attnlab {

struct ParamCounts {
  int64_t total = 0;
  int64_t attention = 0;         // attention parameters (q, k, v, o, positional biases; W of shallow heads)
  int64_t attention_budget = 0;  // D = sum_l H_l * d_l (Transformer)
};

// A slice of the arena that belongs to one head (or recurrent unit) in one parameter group;
// projected GD keeps each head's displacement from initialization inside a ball per group.
struct HeadSlice {
  int group = 0;  // 0 = c, 1 = u (U or the recurrent weights), 2 = w (W or input weights)
  int head = 0;
  std::vector<std::pair<size_t, size_t>> ranges;  // (offset, size) in the arena
};

// Attention probes of one head over the last forward (paper 1's saturation diagnostics).
struct HeadProbe {
  int layer = 0, head = 0;
  double max_abs_logit = 0;   // max |s[t, s']| over the probed rows, s' <= t (bias included)
  double mean_abs_logit = 0;  // mean |s[t, s']| over the same entries
  double entropy = 0;         // mean entropy (nats) of the softmax rows
  double entropy_ratio = 0;   // mean of entropy / log(t + 1) over rows t >= 1: 1 = uniform (saturated)
  double qk_eff_rank = NAN;   // effective rank of W_Q,h^T W_K,h (NaN without the dot product)
};

template <class T>
class Model {
 public:
  virtual ~Model() = default;
  virtual void init(uint64_t seed) = 0;
  // x: [B, T, d_in] or tokens [B, T]. Returns [B, T, out_dim], or [B, 1, out_dim] if last_only().
  virtual const T* forward(const T* x, const int* tokens, int B, int Tn) = 0;
  virtual void backward(const T* dyhat) = 0;
  // For a one-output, last-position model under an MSE loss, whose gradient at sequence b is
  // dy_b = coef_b (f_b - y_b) with coef_b = coef * mask_b: forward and backward in one pass per
  // sequence (no recomputation, nothing of size B * T stored); accumulates into the arena's
  // grads and returns the outputs [B]. nullptr: the model has no such path (use forward and
  // backward). Attention probes are not computed.
  // A hint for the next forward / forward_backward_mse: input channels [from, d_in) are the
  // same in every sequence of the batch at each position (Batch::shared_from; -1: none).
  // A model may use it to compute their terms once per batch.
  virtual void set_shared_channels(int from) { (void)from; }
  virtual const T* forward_backward_mse(const T* x, int B, int Tn, const T* y, const T* mask, T coef) {
    (void)x, (void)B, (void)Tn, (void)y, (void)mask, (void)coef;
    return nullptr;
  }
  // A hint for the next forwards of a per-position model: only the last position's output is
  // needed (a task with one target per sequence). A model that honours it returns true and
  // then returns [B, 1, out_dim] from forward and takes that in backward, with the outputs
  // and gradients of the full computation; false: it computes every position.
  virtual bool set_last_position_only(bool on) { (void)on; return false; }
  virtual int out_dim() const = 0;
  virtual bool last_only() const { return false; }
  virtual ParamCounts counts() const = 0;
  // Named parameter groups for the gradient-norm probes (name, parameter ids).
  virtual std::vector<std::pair<std::string, std::vector<int>>> probe_groups() const { return {}; }
  // Per-head slices for projection (empty: the model has no per-head projection).
  virtual std::vector<HeadSlice> head_slices() const { return {}; }
  // Mean entropy of the attention rows in the last forward (NaN if not an attention model).
  virtual double attention_entropy() const { return NAN; }
  // Per layer and head, over the first max_seqs sequences of the last forward (empty: not a
  // multi-layer attention model).
  virtual std::vector<HeadProbe> head_probes(int max_seqs) const { (void)max_seqs; return {}; }

  Arena<T> arena;
};

// The readout weight c_i of unit i under symmetric initialization (units i >= half copy unit
// i - half with c negated; half = m for i.i.d. units): +-1, drawn per source unit.
inline double symmetric_readout(uint64_t seed, int i, int half) {
  const int src = i < half ? i : i - half;
  const double sign = rng_uniform(seed, stream_id("c"), uint64_t(src)) < 0.5 ? -1.0 : 1.0;
  return i < half ? sign : -sign;
}

// Builds the model named by cfg.kind. max_batch bounds the batch of every forward.
template <class T>
std::unique_ptr<Model<T>> make_model(const ModelConfig& cfg, int max_batch);

// The registry of model kinds and their keys (model.kind selects one).
const std::vector<KindKeys<ModelConfig>>& model_kinds();
// Keys shared by the shallow model and the RNNs: model.width, activation (if it has one),
// init; width must be even for the symmetric initialization.
void width_keys(Keys& k, ModelConfig& m, bool activation);

}  // namespace attnlab
