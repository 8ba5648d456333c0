// The sparse_memory task against its definition: y_t = f(x_{t-T_1}, ..., x_{t-T_M}),
// the mask, purity in (seed, split, index), disjoint splits, and the readouts' forms.
#include <gtest/gtest.h>

#include <cmath>

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
