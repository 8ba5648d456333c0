#include "tasks/adaptive_memory.h"

#include <algorithm>

#include "core/rng.h"
#include "tasks/sparse_memory.h"

namespace attnlab {

AdaptiveMemoryTask::AdaptiveMemoryTask(const TaskConfig& cfg, uint64_t seed)
    : cfg_(cfg), seed_(seed), f_(cfg.readout, cfg.hops * cfg.value_dim, cfg.d_out, cfg.hidden, seed, "adaptive_memory") {}

void AdaptiveMemoryTask::fill(Split split, const int64_t* indices, int B, Batch& batch) const {
  const int T = cfg_.seq_len, V = cfg_.value_dim, K = cfg_.max_pointer, D = V + K;
  batch.shape_real(B, T, D, size_t(B) * T * cfg_.d_out, size_t(B) * T, 0.f);
  static const uint64_t zs[3] = {stream_id("adaptive_memory/train/z"), stream_id("adaptive_memory/val/z"),
                                 stream_id("adaptive_memory/test/z")};
  static const uint64_t ks[3] = {stream_id("adaptive_memory/train/k"), stream_id("adaptive_memory/val/k"),
                                 stream_id("adaptive_memory/test/k")};
  const bool sign = cfg_.inputs == "sign";
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    float* x = batch.x.data() + size_t(b) * T * D;
    std::fill(x, x + size_t(T) * D, 0.f);
    static thread_local std::vector<int> ptr;
    static thread_local std::vector<float> z;
    ptr.resize(size_t(T));
    z.resize(size_t(cfg_.hops) * V);
    const uint64_t i = uint64_t(indices[b]);
    for (int t = 0; t < T; ++t) {
      for (int v = 0; v < V; ++v) x[size_t(t) * D + v] = memory_input(sign, seed_, zs[int(split)], (i * T + t) * V + v);
      ptr[size_t(t)] = 1 + int(rng_below(seed_, ks[int(split)], i * T + t, uint64_t(K)));
      x[size_t(t) * D + V + ptr[size_t(t)] - 1] = 1.f;
    }
    for (int t = 0; t < T; ++t) {  // follow the chain t -> t - k_t -> ... for `hops` steps
      int p = t;
      for (int h = 0; h < cfg_.hops && p >= 0; ++h) {
        p -= ptr[size_t(p)];
        if (p >= 0) std::copy_n(x + size_t(p) * D, V, z.data() + size_t(h) * V);
      }
      const bool ok = p >= 0;
      batch.mask[size_t(b) * T + t] = ok ? 1.f : 0.f;
      if (!ok) continue;
      f_.apply(z.data(), batch.y.data() + (size_t(b) * T + t) * cfg_.d_out);
    }
  }
}

void adaptive_memory_keys(Keys& k, TaskConfig& c) {
  k.integer("value_dim", c.value_dim, 1, 1 << 10);    // dimension of z_t
  k.integer("max_pointer", c.max_pointer, 1, 1 << 16);  // K: pointers k_t in {1..K}
  k.integer("hops", c.hops, 1, 8);                    // pointers followed: 1: f(z_{t-k_t}); 2: and the value its pointer leads to; ...
  k.integer("d_out", c.d_out, 1, 1 << 16);            // target dimension
  readout_keys(k, c);
  if (!k.reading()) return;
  c.d_in = c.value_dim + c.max_pointer;
  if (c.max_pointer * c.hops >= c.seq_len)
    k.fail("max_pointer", "max_pointer x hops (" + std::to_string(c.max_pointer * c.hops) + ") must be < task.seq_len (" +
                              std::to_string(c.seq_len) + ") so that every pointer can be followed");
}

}  // namespace attnlab
