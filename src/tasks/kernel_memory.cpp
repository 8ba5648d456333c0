#include "tasks/kernel_memory.h"

#include <algorithm>
#include <cmath>

#include "core/rng.h"
#include "tasks/sparse_memory.h"

namespace attnlab {

KernelMemoryTask::KernelMemoryTask(const TaskConfig& cfg, uint64_t seed)
    : cfg_(cfg), seed_(seed), f_(cfg.readout, cfg.memories * cfg.d_in, cfg.d_out, cfg.hidden, seed, "kernel_memory") {
  for (int m = 0; m < cfg.memories; ++m) {
    const double beta = cfg.beta.size() == 1 ? cfg.beta[0] : cfg.beta[size_t(m)];
    std::vector<double> r(size_t(cfg.seq_len));
    for (int s = 0; s < cfg.seq_len; ++s) r[size_t(s)] = cfg.decay == "exp" ? std::exp(-beta * s) : std::pow(1.0 + s, -beta);
    rho_.push_back(std::move(r));
  }
}

void KernelMemoryTask::fill(Split split, const int64_t* indices, int B, Batch& batch) const {
  const int T = cfg_.seq_len, D = cfg_.d_in, M = cfg_.memories;
  const bool last = cfg_.positions == "last";  // one target per sequence: y [B, 1, d_out], mask [B, 1]
  const int P = last ? 1 : T;
  batch.shape_real(B, T, D, size_t(B) * P * cfg_.d_out, size_t(B) * P, 1.f);
  if (!last)
    for (int b = 0; b < B; ++b) std::fill_n(batch.mask.begin() + ptrdiff_t(b) * T, cfg_.loss_from, 0.f);
  static const uint64_t streams[3] = {stream_id("kernel_memory/train"), stream_id("kernel_memory/val"),
                                      stream_id("kernel_memory/test")};
  const bool sign = cfg_.inputs == "sign";
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    float* x = batch.x.data() + size_t(b) * T * D;
    const uint64_t base = uint64_t(indices[b]) * uint64_t(T) * uint64_t(D);
    memory_inputs(sign, seed_, streams[int(split)], base, size_t(T) * D, x);
    static thread_local std::vector<float> z;
    static thread_local std::vector<double> acc;
    z.resize(size_t(M) * D);
    acc.resize(size_t(D));
    for (int t = last ? T - 1 : 0; t < T; ++t) {
      for (int m = 0; m < M; ++m) {
        std::fill(acc.begin(), acc.end(), 0.0);
        const std::vector<double>& r = rho_[size_t(m)];
        double mass = 0;
        for (int s = 0; s <= t; ++s) {
          mass += r[size_t(s)];
          for (int d = 0; d < D; ++d) acc[size_t(d)] += r[size_t(s)] * x[size_t(t - s) * D + d];
        }
        for (int d = 0; d < D; ++d) z[size_t(m) * D + d] = float(acc[size_t(d)] / mass);
      }
      f_.apply(z.data(), batch.y.data() + (size_t(b) * P + (last ? 0 : size_t(t))) * cfg_.d_out);
    }
  }
}

bool KernelMemoryTask::lag_target(LagTarget& out) const {
  if (cfg_.memories != 1 || cfg_.d_in != 1 || cfg_.d_out != 1 || cfg_.readout != "linear") return false;
  out.r = rho_[0];
  out.normalized = true;
  out.positions.clear();
  for (int t = cfg_.positions == "last" ? cfg_.seq_len - 1 : cfg_.loss_from; t < cfg_.seq_len; ++t) out.positions.push_back(t);
  return true;
}

void kernel_memory_keys(Keys& k, TaskConfig& c) {
  k.integer("d_in", c.d_in, 1, 1 << 16);          // input dimension
  k.integer("d_out", c.d_out, 1, 1 << 16);        // target dimension
  k.integer("memories", c.memories, 1, 1 << 10);  // M
  k.choice("decay", c.decay, {"exp", "poly"});    // rho(s) = e^{-beta s} | (1 + s)^{-beta}
  k.numbers("beta", c.beta, 0.0, true);           // one, or one per memory
  k.choice("positions", c.positions, {"all", "last"});  // a target at every position | the last only
  loss_from_key(k, c);
  readout_keys(k, c);
  if (k.reading() && c.beta.size() != 1 && int(c.beta.size()) != c.memories)
    k.fail("beta", "has " + std::to_string(c.beta.size()) + " values but task.memories = " + std::to_string(c.memories) +
                       " (give one value, or one per memory)");
}

}  // namespace attnlab
