#pragma once
// Task `ngram_noise` (paper 1's synthetic n-gram task): white-noise tokens x_t ~ N(0, I_{d_in});
// y_t = f(x_t, x_{t-1}, ..., x_{t-n+1}) with n = task.n_gram and f a readout of
// tasks/readout.h ("linear" or "mlp") of the concatenated window. The loss counts positions
// t >= n - 1. It is sparse_memory with lags 0, 1, ..., n - 1 and draws the same samples: one
// memory structure, two names, so that results of the two papers can be compared.
#include "io/config_keys.h"
#include "tasks/sparse_memory.h"

namespace attnlab {

class NgramNoiseTask : public SparseMemoryTask {
 public:
  NgramNoiseTask(const TaskConfig& cfg, uint64_t seed);
};

// The sparse_memory config of an n-gram task (lags 0..n-1, gaussian inputs, every position).
TaskConfig ngram_as_sparse_memory(const TaskConfig& cfg);

// Its own config keys (task.n_gram, d_in, d_out, readout, hidden).
void ngram_noise_keys(Keys& k, TaskConfig& c);

}  // namespace attnlab
