#include "tasks/sparse_memory.h"

#include <algorithm>
#include <cmath>

#include "core/rng.h"

namespace attnlab {

namespace {
std::vector<float> normal_vec(size_t n, uint64_t seed, const char* name, double std) {
  std::vector<float> v(n);
  const uint64_t s = stream_id(name);
  for (size_t i = 0; i < n; ++i) v[i] = float(std * rng_normal(seed, s, i));
  return v;
}
}  // namespace

SparseMemoryTask::SparseMemoryTask(const TaskConfig& cfg, uint64_t seed) : cfg_(cfg), seed_(seed) {
  for (int lag : cfg.lags) max_lag_ = std::max(max_lag_, lag);
  const size_t z = cfg.lags.size() * size_t(cfg.d_in);
  if (cfg.readout == "linear") {
    A_ = normal_vec(size_t(cfg.d_out) * z, seed, "sparse_memory/A", 1.0 / std::sqrt(double(z)));
  } else {
    W_ = normal_vec(size_t(cfg.hidden) * z, seed, "sparse_memory/W", 1.0 / std::sqrt(double(z)));
    c_ = normal_vec(size_t(cfg.hidden), seed, "sparse_memory/c", 0.1);
    a_ = normal_vec(size_t(cfg.d_out) * cfg.hidden, seed, "sparse_memory/a", 1.0 / std::sqrt(double(cfg.hidden)));
  }
}

void SparseMemoryTask::readout(const float* z, float* y) const {
  const int Z = int(cfg_.lags.size()) * cfg_.d_in;
  if (!A_.empty()) {
    for (int j = 0; j < cfg_.d_out; ++j) {
      double s = 0;
      for (int i = 0; i < Z; ++i) s += double(A_[size_t(j) * Z + i]) * z[i];
      y[j] = float(s);
    }
    return;
  }
  std::vector<double> h(size_t(cfg_.hidden));
  for (int k = 0; k < cfg_.hidden; ++k) {
    double s = c_[k];
    for (int i = 0; i < Z; ++i) s += double(W_[size_t(k) * Z + i]) * z[i];
    h[k] = std::tanh(s);
  }
  for (int j = 0; j < cfg_.d_out; ++j) {
    double s = 0;
    for (int k = 0; k < cfg_.hidden; ++k) s += a_[size_t(j) * cfg_.hidden + k] * h[k];
    y[j] = float(s);
  }
}

void SparseMemoryTask::fill(Split split, const int64_t* indices, int B, Batch& batch) const {
  const int T = cfg_.seq_len, D = cfg_.d_in, M = int(cfg_.lags.size());
  batch.shape_real(B, T, D, size_t(B) * T * cfg_.d_out, size_t(B) * T, 0.f);  // mask set per position below
  static const uint64_t streams[3] = {stream_id("sparse_memory/train"), stream_id("sparse_memory/val"),
                                      stream_id("sparse_memory/test")};
  const uint64_t stream = streams[int(split)];
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    float* x = batch.x.data() + size_t(b) * T * D;
    const uint64_t base = uint64_t(indices[b]) * uint64_t(T) * uint64_t(D);
    for (int i = 0; i < T * D; ++i) x[i] = float(rng_normal(seed_, stream, base + uint64_t(i)));
    static thread_local std::vector<float> z;  // kept per thread: filling a batch allocates nothing
    z.resize(size_t(M) * D);
    for (int t = 0; t < T; ++t) {
      const bool ok = t >= max_lag_;
      batch.mask[size_t(b) * T + t] = ok ? 1.f : 0.f;
      if (!ok) continue;
      for (int m = 0; m < M; ++m)
        std::copy_n(x + size_t(t - cfg_.lags[m]) * D, D, z.data() + size_t(m) * D);
      readout(z.data(), batch.y.data() + (size_t(b) * T + t) * cfg_.d_out);
    }
  }
}

void sparse_memory_keys(Keys& k, TaskConfig& c) {
  k.integer("d_in", c.d_in, 1, 1 << 16);       // input dimension
  k.integer("d_out", c.d_out, 1, 1 << 16);     // target dimension
  k.ints("lags", c.lags, 0, false);            // T_1..T_M, each in [0, seq_len)
  k.choice("readout", c.readout, {"linear", "mlp"});  // linear: y = A z | mlp: y = a^T tanh(W z + c)
  k.integer("hidden", c.hidden, 1, 1 << 16);   // width of the mlp readout
  if (k.reading())
    for (int lag : c.lags)
      if (lag >= c.seq_len)
        k.fail("lags", "lag " + std::to_string(lag) + " must be < task.seq_len (" + std::to_string(c.seq_len) + ")");
}

}  // namespace attnlab
