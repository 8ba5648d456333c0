// Optimizers and schedules against their update formulas.
#include <gtest/gtest.h>

#include <cmath>

#include "train/optimizer.h"

using namespace attnlab;

TEST(Optimizer, AdamWMatchesTheFormula) {
  std::vector<float> p = {1.0f, -2.0f}, g = {0.5f, -0.25f};
  AdamW opt(2, 0.9, 0.999, 1e-8, 0.1, {1, 0});
  double m[2] = {0, 0}, v[2] = {0, 0}, ref[2] = {1.0, -2.0};
  for (int t = 1; t <= 3; ++t) {
    opt.step(p, g, 0.01);
    for (int i = 0; i < 2; ++i) {
      m[i] = 0.9 * m[i] + 0.1 * g[i];
      v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
      if (i == 0) ref[i] -= 0.01 * 0.1 * ref[i];  // decoupled decay on decay entries only
      ref[i] -= 0.01 * (m[i] / (1 - std::pow(0.9, t))) / (std::sqrt(v[i] / (1 - std::pow(0.999, t))) + 1e-8);
      EXPECT_NEAR(p[i], ref[i], 1e-6);
    }
  }
}

TEST(Optimizer, SgdMomentum) {
  std::vector<float> p = {1.0f}, g = {2.0f};
  Sgd opt(1, 0.5, 0.0, {0});
  opt.step(p, g, 0.1);  // v = 2, p = 0.8
  opt.step(p, g, 0.1);  // v = 3, p = 0.5
  EXPECT_NEAR(p[0], 0.5, 1e-6);
}

TEST(Optimizer, Schedules) {
  TrainConfig c;
  c.lr = 1.0; c.steps = 110; c.warmup = 10; c.lr_schedule = "cosine"; c.min_lr = 0.1;
  EXPECT_NEAR(scheduled_lr(c, 0), 0.1, 1e-12);
  EXPECT_NEAR(scheduled_lr(c, 9), 1.0, 1e-12);
  EXPECT_NEAR(scheduled_lr(c, 10), 1.0, 1e-12);
  EXPECT_NEAR(scheduled_lr(c, 60), 0.55, 1e-12);
  EXPECT_NEAR(scheduled_lr(c, 110), 0.1, 1e-12);
  c.lr_schedule = "constant";
  EXPECT_NEAR(scheduled_lr(c, 50), 1.0, 1e-12);
}
