#include "tasks/retrieval.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/rng.h"

namespace attnlab {

namespace {
const uint64_t kStreams[3] = {stream_id("retrieval/train"), stream_id("retrieval/val"), stream_id("retrieval/test")};
const uint64_t kQuery[3] = {stream_id("retrieval/train/query"), stream_id("retrieval/val/query"),
                            stream_id("retrieval/test/query")};
}  // namespace

int64_t RetrievalTask::queried(Split split, int64_t index) const {
  return int64_t(rng_below(seed_, kQuery[int(split)], uint64_t(index), uint64_t(cfg_.seq_len - 1)));
}

void RetrievalTask::fill(Split split, const int64_t* indices, int B, Batch& batch) const {
  const int T = cfg_.seq_len, K = cfg_.d_in, V = cfg_.d_out, W = K + V + 1;
  batch.shape_real(B, T, W, size_t(B) * V, size_t(B), 1.f);
  const uint64_t stream = kStreams[int(split)];
  const double key_std = 1.0 / std::sqrt(double(K));
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    static thread_local std::vector<double> z;  // the sequence's normals, in draw order (kept per thread)
    z.resize(size_t(T - 1) * size_t(K + V));
    float* x = batch.x.data() + size_t(b) * T * W;
    // Pair i draws K + V normals at (index * (T - 1) + i) * (K + V) + c: one run of indices.
    rng_normals(seed_, stream, uint64_t(indices[b]) * uint64_t(T - 1) * uint64_t(K + V), z.size(), z.data());
    for (int i = 0; i < T - 1; ++i) {
      float* xi = x + size_t(i) * W;
      const double* zi = z.data() + size_t(i) * (K + V);
      for (int c = 0; c < K; ++c) xi[c] = float(key_std * zi[c]);
      for (int c = 0; c < V; ++c) xi[K + c] = float(zi[K + c]);
      xi[K + V] = 0.f;
    }
    const int64_t j = queried(split, indices[b]);
    float* q = x + size_t(T - 1) * W;
    std::copy_n(x + size_t(j) * W, K, q);
    std::fill(q + K, q + K + V, 0.f);
    q[K + V] = 1.f;
    std::copy_n(x + size_t(j) * W + K, V, batch.y.data() + size_t(b) * V);
  }
}

void retrieval_keys(Keys& k, TaskConfig& c) {
  k.integer("d_in", c.d_in, 1, 1 << 16);    // key dimension
  k.integer("d_out", c.d_out, 1, 1 << 16);  // value dimension
  if (!k.reading()) return;
  if (c.seq_len < 2) k.fail("seq_len", "retrieval needs at least one pair and the query (seq_len >= 2)");
  c.model_in = c.d_in + c.d_out + 1;
}

}  // namespace attnlab
