#include "tasks/sparse_memory.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/rng.h"

namespace attnlab {

float memory_input(bool sign, uint64_t seed, uint64_t stream, uint64_t index) {
  return sign ? (rng_uniform(seed, stream, index) < 0.5 ? -1.f : 1.f) : float(rng_normal(seed, stream, index));
}

void memory_inputs(bool sign, uint64_t seed, uint64_t stream, uint64_t first, size_t n, float* x) {
  if (sign) {
    for (size_t i = 0; i < n; ++i) x[i] = memory_input(true, seed, stream, first + i);
    return;
  }
  static thread_local std::vector<double> g;  // kept per thread: drawing allocates nothing
  g.resize(n);
  rng_normals(seed, stream, first, n, g.data());
  for (size_t i = 0; i < n; ++i) x[i] = float(g[i]);
}

SparseMemoryTask::SparseMemoryTask(const TaskConfig& cfg, uint64_t seed)
    : cfg_(cfg), seed_(seed), f_(cfg.readout, int(cfg.lags.size()) * cfg.d_in, cfg.d_out, cfg.hidden, seed, "sparse_memory") {
  for (int lag : cfg.lags) max_lag_ = std::max(max_lag_, lag);
}

void SparseMemoryTask::fill(Split split, const int64_t* indices, int B, Batch& batch) const {
  const int T = cfg_.seq_len, D = cfg_.d_in, M = int(cfg_.lags.size());
  const bool last = cfg_.positions == "last";  // one target per sequence: y [B, 1, d_out], mask [B, 1]
  const int P = last ? 1 : T;
  batch.shape_real(B, T, D, size_t(B) * P * cfg_.d_out, size_t(B) * P, 0.f);  // mask set per position below
  static const uint64_t streams[3] = {stream_id("sparse_memory/train"), stream_id("sparse_memory/val"),
                                      stream_id("sparse_memory/test")};
  const uint64_t stream = streams[int(split)];
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    float* x = batch.x.data() + size_t(b) * T * D;
    const uint64_t base = uint64_t(indices[b]) * uint64_t(T) * uint64_t(D);
    const bool sign = cfg_.inputs == "sign";
    memory_inputs(sign, seed_, stream, base, size_t(T) * D, x);
    static thread_local std::vector<float> z;  // kept per thread: filling a batch allocates nothing
    z.resize(size_t(M) * D);
    for (int t = last ? T - 1 : 0; t < T; ++t) {
      const bool ok = t >= max_lag_ && t >= cfg_.loss_from;
      const size_t at = size_t(b) * P + (last ? 0 : size_t(t));
      batch.mask[at] = ok ? 1.f : 0.f;
      if (!ok) continue;
      for (int m = 0; m < M; ++m)
        std::copy_n(x + size_t(t - cfg_.lags[m]) * D, D, z.data() + size_t(m) * D);
      readout(z.data(), batch.y.data() + at * cfg_.d_out);
    }
  }
}

void sparse_memory_keys(Keys& k, TaskConfig& c) {
  k.integer("d_in", c.d_in, 1, 1 << 16);       // input dimension
  k.integer("d_out", c.d_out, 1, 1 << 16);     // target dimension
  k.ints("lags", c.lags, 0);                   // T_1..T_M, each in [0, seq_len) (one lag: a number)
  k.choice("positions", c.positions, {"all", "last"});  // targets at every position t >= max lag | the last only
  loss_from_key(k, c);
  readout_keys(k, c);
  if (k.reading())
    for (int lag : c.lags)
      if (lag >= c.seq_len)
        k.fail("lags", "lag " + std::to_string(lag) + " must be < task.seq_len (" + std::to_string(c.seq_len) + ")");
}

void loss_from_key(Keys& k, TaskConfig& c) {
  k.integer("loss_from", c.loss_from, 0);  // the loss counts at positions t >= loss_from only
  if (k.reading() && c.loss_from >= c.seq_len)
    k.fail("loss_from", "must be < task.seq_len (" + std::to_string(c.seq_len) + "): no position would carry loss");
}

bool SparseMemoryTask::lag_target(LagTarget& out) const {
  if (cfg_.lags.size() != 1 || cfg_.d_in != 1 || cfg_.d_out != 1 || cfg_.readout != "linear") return false;
  const int lag = cfg_.lags[0], T = cfg_.seq_len;
  out.r.assign(size_t(T), 0.0);
  out.r[size_t(lag)] = 1;
  out.normalized = false;
  out.positions.clear();
  for (int t = cfg_.positions == "last" ? T - 1 : std::max(lag, cfg_.loss_from); t < T; ++t)
    if (t >= lag && t >= cfg_.loss_from) out.positions.push_back(t);
  return !out.positions.empty();
}

void readout_keys(Keys& k, TaskConfig& c) {
  k.choice("inputs", c.inputs, {"gaussian", "sign"});  // x_t ~ N(0, I) | uniform +-1
  k.choice("readout", c.readout, Readout::kinds());    // f (tasks/readout.h)
  k.integer("hidden", c.hidden, 1, 1 << 16);          // width of the mlp and deep_mlp readouts
  if (k.reading() && (c.readout == "parity" || c.readout == "majority" || c.readout == "sum") && c.d_out != 1)
    k.fail("readout", "'" + c.readout + "' has one output: task.d_out must be 1 (got " + std::to_string(c.d_out) + ")");
}

}  // namespace attnlab
