// Google Benchmark micro-benchmarks of the paper-3 models: one full-batch gradient step
// (forward + backward) at the sizes of E1 (shallow attention, n 4000, m 256, T 16, d 8) and
// E4 (IndRNN, n 4000, L 96, m 64). Compare with tools/torch_p3.py speed shallow|indrnn.
#include <benchmark/benchmark.h>

#include "core/rng.h"
#include "models/model.h"
#include "train/trainer.h"

using namespace attnlab;

static void run(benchmark::State& state, const char* kind, int m, int d, int T, int B) {
  configure_threads(int(state.range(0)));
  ModelConfig c;
  c.kind = kind;
  c.width = m;
  c.d_in = d;
  c.max_len = T;
  auto model = make_model<float>(c, B);
  model->init(1);
  std::vector<float> x(size_t(B) * T * d), dy(size_t(B), 0.01f);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(0.3 * rng_normal(1, 2, i));
  for (auto _ : state) {
    model->forward(x.data(), nullptr, B, T);
    model->arena.zero_grad();
    model->backward(dy.data());
    benchmark::DoNotOptimize(model->arena.grad().data());
  }
  state.counters["seq_per_s"] = benchmark::Counter(double(B), benchmark::Counter::kIsIterationInvariantRate);
}

static void BM_P3_ShallowE1(benchmark::State& s) { run(s, "shallow_attention", 256, 8, 16, 4000); }
static void BM_P3_IndRnnE4(benchmark::State& s) { run(s, "indrnn", 64, 1, 97, 4000); }
BENCHMARK(BM_P3_ShallowE1)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_P3_IndRnnE4)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();


