// Paper 1's E2 model (retrieval: one layer, one head of dimension 64, d_model 64, no FFN, no
// norm, no positions; batch 32) at T = 256, 1024 and 4096: one training step's forward and
// backward computing every position (as before last-position mode) against the last position
// only (what training on a per-sequence task runs now). Data generation is not timed.
// args: T, last-position mode (0 or 1).
#include <benchmark/benchmark.h>

#include <vector>

#include "core/rng.h"
#include "models/transformer.h"
#include "train/trainer.h"

using namespace attnlab;

static void BM_P1E2Step(benchmark::State& st) {
  configure_threads(0);
  const int T = int(st.range(0)), B = 32;
  const bool last = st.range(1) != 0;
  ModelConfig m;
  m.d_model = 64;
  m.layers = 1;
  m.heads = {1};
  m.head_dim = m.value_dim = {{64}};
  m.ffn = {0};
  m.norm = Norm::none;
  m.pos = Pos::none;
  m.d_in = 18;
  m.d_out = 1;
  m.max_len = T;
  Transformer<float> model(m, B);
  model.init(1);
  model.set_last_position_only(last);
  std::vector<float> x(size_t(B) * T * m.d_in);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(rng_normal(1, 2, i));
  std::vector<float> dy(last ? size_t(B) : size_t(B) * T, 0.f);
  for (int b = 0; b < B; ++b) dy[last ? size_t(b) : size_t(b) * T + T - 1] = 0.01f * float(b + 1);
  for (auto _ : st) {
    model.forward(x.data(), nullptr, B, T);
    model.arena.zero_grad();
    model.backward(dy.data());
    benchmark::DoNotOptimize(model.arena.grad().data());
  }
}
BENCHMARK(BM_P1E2Step)->ArgsProduct({{256, 1024, 4096}, {0, 1}})->ArgNames({"T", "last"})->Unit(benchmark::kMillisecond)->UseRealTime();
