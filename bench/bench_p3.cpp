// Google Benchmark micro-benchmarks of the paper-3 models: one full-batch training step of
// plain MSE (forward + backward, the path `attnlab train` takes: the fused
// forward_backward_mse where the model has it) at the paper's shapes: E1 (shallow attention,
// n 4000, m 256, T 16, d 8) and E4 (n 4000, T = L + 1 = 97, d = 17, m 64, both models).
// The _Shared variants: E4's time channels shared by the batch (kernels/shared_channels.h).
// Compare with tools/torch_p3.py speed shallow|indrnn (the authors' formulation).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>

#include "core/rng.h"
#include "models/model.h"
#include "train/trainer.h"

using namespace attnlab;

// shared > 0: channels [shared, d) are the same in every sequence (E4's time channels) and the
// model is told so (kernels/shared_channels.h), as `attnlab train` does on ar_forecast.
static void run(benchmark::State& state, const char* kind, int m, int d, int T, int B, int shared = -1) {
  configure_threads(int(state.range(0)));
  ModelConfig c;
  c.kind = kind;
  c.width = m;
  c.d_in = d;
  c.max_len = T;
  auto model = make_model<float>(c, B);
  model->init(1);
  std::vector<float> x(size_t(B) * T * d), y(static_cast<size_t>(B)), mask(static_cast<size_t>(B), 1.f), dy(static_cast<size_t>(B));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(rng_normal(1, 2, i));
  for (size_t t = 0; t < x.size() / size_t(d); ++t) {  // tokens of norm <= 1, as the teacher-student inputs
    double n2 = 0;
    for (int k = 0; k < d; ++k) n2 += double(x[t * d + k]) * x[t * d + k];
    const double r = std::min(1.0, 1.0 / std::sqrt(n2));
    for (int k = 0; k < d; ++k) x[t * d + k] = float(x[t * d + k] * r);
  }
  if (shared > 0)
    for (size_t b = 1; b < size_t(B); ++b)
      for (size_t t = 0; t < size_t(T); ++t)
        for (size_t k = size_t(shared); k < size_t(d); ++k) x[(b * T + t) * d + k] = x[t * d + k];
  model->set_shared_channels(shared);
  for (int b = 0; b < B; ++b) y[size_t(b)] = float(rng_normal(1, 3, uint64_t(b)));
  const float coef = 2.f / float(B);
  for (auto _ : state) {
    model->arena.zero_grad();
    if (!model->forward_backward_mse(x.data(), B, T, y.data(), mask.data(), coef)) {
      const float* f = model->forward(x.data(), nullptr, B, T);
      for (int b = 0; b < B; ++b) dy[size_t(b)] = coef * (f[b] - y[size_t(b)]);
      model->backward(dy.data());
    }
    benchmark::DoNotOptimize(model->arena.grad().data());
  }
  state.counters["seq_per_s"] = benchmark::Counter(double(B), benchmark::Counter::kIsIterationInvariantRate);
}

static void BM_P3_ShallowE1(benchmark::State& s) { run(s, "shallow_attention", 256, 8, 16, 4000); }
static void BM_P3_ShallowE4_L96(benchmark::State& s) { run(s, "shallow_attention", 64, 17, 97, 4000); }
static void BM_P3_IndRnnE4_L96(benchmark::State& s) { run(s, "indrnn", 64, 17, 97, 4000); }
static void BM_P3_ShallowE4_L96_Shared(benchmark::State& s) { run(s, "shallow_attention", 64, 17, 97, 4000, 1); }
static void BM_P3_IndRnnE4_L96_Shared(benchmark::State& s) { run(s, "indrnn", 64, 17, 97, 4000, 1); }
BENCHMARK(BM_P3_ShallowE1)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_P3_ShallowE4_L96)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_P3_IndRnnE4_L96)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_P3_ShallowE4_L96_Shared)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_P3_IndRnnE4_L96_Shared)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
