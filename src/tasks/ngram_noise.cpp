#include "tasks/ngram_noise.h"

#include <string>

namespace attnlab {

TaskConfig ngram_as_sparse_memory(const TaskConfig& cfg) {
  TaskConfig s = cfg;
  s.lags.clear();
  for (int i = 0; i < cfg.n_gram; ++i) s.lags.push_back(i);
  s.inputs = "gaussian";
  s.positions = "all";
  return s;
}

NgramNoiseTask::NgramNoiseTask(const TaskConfig& cfg, uint64_t seed) : SparseMemoryTask(ngram_as_sparse_memory(cfg), seed) {}

void ngram_noise_keys(Keys& k, TaskConfig& c) {
  k.integer("n_gram", c.n_gram, 1, 1 << 16);       // n: y_t depends on x_t .. x_{t-n+1}
  k.integer("d_in", c.d_in, 1, 1 << 16);           // dimension of each white-noise token
  k.integer("d_out", c.d_out, 1, 1 << 16);         // target dimension
  k.choice("readout", c.readout, {"linear", "mlp"});  // f (tasks/readout.h)
  k.integer("hidden", c.hidden, 1, 1 << 16);       // width of the mlp readout
  if (k.reading() && c.n_gram > c.seq_len)
    k.fail("n_gram", std::to_string(c.n_gram) + " must be <= task.seq_len (" + std::to_string(c.seq_len) + ")");
}

}  // namespace attnlab
