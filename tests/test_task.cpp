// The sparse_memory task against its definition (and the batched normals it draws with): y_t = f(x_{t-T_1}, ..., x_{t-T_M}),
// the mask, purity in (seed, split, index), disjoint splits, and the readouts' forms.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/rng.h"
#include "tasks/sparse_memory.h"

using namespace attnlab;

namespace {
TaskConfig cfg(const std::string& readout) {
  TaskConfig c;
  c.seq_len = 20;
  c.d_in = 3;
  c.d_out = 2;
  c.lags = {0, 2, 7};
  c.readout = readout;
  c.hidden = 5;
  return c;
}
}  // namespace

TEST(SparseMemory, TargetsFollowTheDefinition) {
  for (const char* ro : {"linear", "mlp"}) {
    const TaskConfig c = cfg(ro);
    SparseMemoryTask task(c, 42);
    Batch b;
    const int64_t idx[2] = {5, 900};
    task.fill(Split::train, idx, 2, b);
    for (int s = 0; s < 2; ++s)
      for (int t = 0; t < c.seq_len; ++t) {
        EXPECT_EQ(b.mask[s * c.seq_len + t], t >= 7 ? 1.f : 0.f);
        if (t < 7) continue;
        std::vector<float> z;
        for (int lag : c.lags)
          for (int i = 0; i < c.d_in; ++i) z.push_back(b.x[(size_t(s) * c.seq_len + t - lag) * c.d_in + i]);
        float y[2];
        task.readout(z.data(), y);
        for (int j = 0; j < 2; ++j) EXPECT_FLOAT_EQ(b.y[(size_t(s) * c.seq_len + t) * 2 + j], y[j]);
      }
  }
}

TEST(SparseMemory, LinearReadoutIsLinearAndMlpIsNot) {
  SparseMemoryTask lin(cfg("linear"), 1), mlp(cfg("mlp"), 1);
  std::vector<float> z1(9), z2(9), z3(9);
  for (int i = 0; i < 9; ++i) { z1[i] = 0.3f * i - 1; z2[i] = 0.5f - 0.2f * i; z3[i] = z1[i] + z2[i]; }
  float a[2], b[2], c[2];
  lin.readout(z1.data(), a); lin.readout(z2.data(), b); lin.readout(z3.data(), c);
  for (int j = 0; j < 2; ++j) EXPECT_NEAR(a[j] + b[j], c[j], 1e-5);
  mlp.readout(z1.data(), a); mlp.readout(z2.data(), b); mlp.readout(z3.data(), c);
  EXPECT_GT(std::fabs(a[0] + b[0] - c[0]), 1e-3);
}

TEST(SparseMemory, SamplesArePureAndSplitsDiffer) {
  SparseMemoryTask task(cfg("linear"), 7);
  Batch a, b, c, d;
  const int64_t i1[2] = {3, 4}, i2[1] = {4};
  task.fill(Split::train, i1, 2, a);
  task.fill(Split::train, i2, 1, b);  // same sample, alone and in another position
  for (size_t i = 0; i < b.x.size(); ++i) EXPECT_EQ(a.x[b.x.size() + i], b.x[i]);
  task.fill(Split::val, i2, 1, c);
  task.fill(Split::test, i2, 1, d);
  EXPECT_NE(b.x, c.x);
  EXPECT_NE(c.x, d.x);
  SparseMemoryTask other(cfg("linear"), 8);
  Batch e;
  other.fill(Split::train, i2, 1, e);
  EXPECT_NE(b.x, e.x);
}

TEST(SparseMemory, InputsAreStandardNormal) {
  TaskConfig c = cfg("linear");
  c.seq_len = 100;
  SparseMemoryTask task(c, 3);
  std::vector<int64_t> idx(200);
  for (int i = 0; i < 200; ++i) idx[i] = i;
  Batch b;
  task.fill(Split::train, idx.data(), 200, b);
  double m = 0, v = 0;
  for (float x : b.x) m += x;
  m /= double(b.x.size());
  for (float x : b.x) v += (x - m) * (x - m);
  v /= double(b.x.size());
  EXPECT_NEAR(m, 0.0, 0.01);  // 60000 samples: std error 0.004
  EXPECT_NEAR(v, 1.0, 0.02);
}

// The batched normals (vector log and cos) against rng_normal, one value at a time: the doubles
// agree to the last bits and every float is the same (1,000,003 values, not a whole number of
// the batch's chunks, at an offset past 2^32).
TEST(Rng, BatchedNormalsMatchOneAtATime) {
  const size_t n = 1000003;
  const uint64_t first = (uint64_t(1) << 32) + 12345, stream = stream_id("test/normals");
  std::vector<double> g(n);
  rng_normals(9, stream, first, n, g.data());
  size_t float_diff = 0;
  double worst = 0;
  for (size_t i = 0; i < n; ++i) {
    const double a = rng_normal(9, stream, first + i);
    worst = std::max(worst, std::fabs(g[i] - a) / std::max(std::fabs(a), 1e-300));
    float_diff += float(g[i]) != float(a);
  }
  EXPECT_LT(worst, 1e-14);
  EXPECT_EQ(float_diff, 0u);
}

// Gaussian and sign inputs are memory_input at their index: sample i's x is the run of indices
// i * T * d_in onwards of the split's stream.
TEST(SparseMemory, InputsAreMemoryInputAtTheirIndex) {
  for (const char* inputs : {"gaussian", "sign"}) {
    TaskConfig c = cfg("linear");
    c.inputs = inputs;
    SparseMemoryTask task(c, 11);
    Batch b;
    const int64_t idx[2] = {7, 123456};
    task.fill(Split::val, idx, 2, b);
    const size_t per = size_t(c.seq_len) * c.d_in;
    for (int s = 0; s < 2; ++s)
      for (size_t i = 0; i < per; ++i)
        ASSERT_EQ(b.x[s * per + i], memory_input(c.inputs == "sign", 11, stream_id("sparse_memory/val"), uint64_t(idx[s]) * per + i))
            << inputs << " sample " << s << " value " << i;
  }
}
