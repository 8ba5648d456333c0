// Google Benchmark micro-benchmarks of the Transformer kernels at the sizes of the reference
// set (attnlab bench): attention forward/backward, linear, LayerNorm, GELU.
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "core/blas_env.h"
#include "core/rng.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/linear.h"
#include "kernels/norm.h"
#include "train/trainer.h"

using namespace attnlab;

static std::vector<float> rnd(size_t n, uint64_t s) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = float(rng_normal(s, 1, i));
  return v;
}

// args: T, threads (B = 8192 / T sequences, 4 heads of 32)
static void BM_AttentionFwdBwd(benchmark::State& st) {
  configure_threads(int(st.range(1)));
  AttnDims d;
  d.T = int(st.range(0));
  d.B = std::max(1, 8192 / d.T);
  d.H = 4; d.dk = 32; d.dv = 32; d.scale = 1 / std::sqrt(32.0);
  const size_t n = size_t(d.B) * d.T * d.H * 32;
  auto q = rnd(n, 1), k = rnd(n, 2), v = rnd(n, 3), g = rnd(n, 4);
  std::vector<float> o(n), lse(size_t(d.B) * d.H * d.T), dq(n), dk(n), dv(n), work;
  for (auto _ : st) {
    attention_forward(o.data(), lse.data(), q.data(), k.data(), v.data(), (const float*)nullptr, d, work);
    attention_backward(dq.data(), dk.data(), dv.data(), (float*)nullptr, g.data(), o.data(), lse.data(), q.data(), k.data(),
                       v.data(), (const float*)nullptr, d, work);
    benchmark::DoNotOptimize(dq.data());
  }
  // causal: T(T+1)/2 scores; QK^T and PV forward, 2.5x that for the backward with recompute
  const double flops = 3.5 * 2.0 * 2.0 * d.B * d.H * 32.0 * d.T * (d.T + 1) / 2.0;
  st.counters["GFLOP/s"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
// The medium reference model's attention (B 16, H 8, T 256, head dim 32), forward and
// backward timed apart; args: threads.
static void BM_AttentionMedium(benchmark::State& st, bool backward) {
  configure_threads(int(st.range(0)));
  AttnDims d;
  d.T = 256; d.B = 16; d.H = 8; d.dk = 32; d.dv = 32; d.scale = 1 / std::sqrt(32.0);
  const size_t n = size_t(d.B) * d.T * d.H * 32;
  auto q = rnd(n, 1), k = rnd(n, 2), v = rnd(n, 3), g = rnd(n, 4);
  std::vector<float> o(n), lse(size_t(d.B) * d.H * d.T), dq(n), dk(n), dv(n), work;
  attention_forward(o.data(), lse.data(), q.data(), k.data(), v.data(), (const float*)nullptr, d, work);
  for (auto _ : st) {
    if (!backward) attention_forward(o.data(), lse.data(), q.data(), k.data(), v.data(), (const float*)nullptr, d, work);
    else attention_backward(dq.data(), dk.data(), dv.data(), (float*)nullptr, g.data(), o.data(), lse.data(), q.data(),
                            k.data(), v.data(), (const float*)nullptr, d, work);
    benchmark::DoNotOptimize(o.data());
    benchmark::DoNotOptimize(dq.data());
  }
}
static void BM_AttentionMediumAfterGemm(benchmark::State& st) {
  configure_threads(int(st.range(0)));
  AttnDims d;
  d.T = 256; d.B = 16; d.H = 8; d.dk = 32; d.dv = 32; d.scale = 1 / std::sqrt(32.0);
  const size_t n = size_t(d.B) * d.T * d.H * 32;
  auto q = rnd(n, 1), k = rnd(n, 2), v = rnd(n, 3), g = rnd(n, 4);
  auto W = rnd(256 * 256, 5);
  std::vector<float> o(n), lse(size_t(d.B) * d.H * d.T), work, y(n);
  attention_forward(o.data(), lse.data(), q.data(), k.data(), v.data(), (const float*)nullptr, d, work);
  for (auto _ : st) {
    st.PauseTiming();
    linear_forward(y.data(), q.data(), W.data(), (const float*)nullptr, 4096, 256, 256);
    st.ResumeTiming();
    attention_forward(o.data(), lse.data(), y.data(), k.data(), v.data(), (const float*)nullptr, d, work);
    benchmark::DoNotOptimize(o.data());
  }
}
BENCHMARK(BM_AttentionMediumAfterGemm)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_AttentionMedium, forward, false)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_AttentionMedium, backward, true)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK(BM_AttentionFwdBwd)->Args({256, 2})->Args({1024, 2})->Args({4096, 2})->Args({1024, 1})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// args: N rows, in, out, threads
static void BM_LinearFwdBwd(benchmark::State& st) {
  configure_threads(int(st.range(3)));
  const int N = int(st.range(0)), in = int(st.range(1)), out = int(st.range(2));
  auto x = rnd(size_t(N) * in, 1), W = rnd(size_t(out) * in, 2), b = rnd(size_t(out), 3), dy = rnd(size_t(N) * out, 4);
  std::vector<float> y(size_t(N) * out), dx(size_t(N) * in), dW(W.size()), db(b.size());
  for (auto _ : st) {
    linear_forward(y.data(), x.data(), W.data(), b.data(), N, in, out);
    linear_backward(dx.data(), dW.data(), db.data(), dy.data(), x.data(), W.data(), N, in, out);
    benchmark::DoNotOptimize(dW.data());
  }
  st.counters["GFLOP/s"] = benchmark::Counter(6.0 * N * in * out / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_LinearFwdBwd)->Args({4096, 256, 1024, 2})->Args({8192, 128, 512, 2})->Args({4096, 256, 1024, 1})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

static void BM_LayerNormFwdBwd(benchmark::State& st) {
  configure_threads(2);
  const int N = 8192, C = int(st.range(0));
  auto x = rnd(size_t(N) * C, 1), w = rnd(size_t(C), 2), b = rnd(size_t(C), 3), g = rnd(size_t(N) * C, 4);
  std::vector<float> y(x.size()), mean(N), rstd(N), dx(x.size()), dw(C), db(C);
  for (auto _ : st) {
    layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C);
    layernorm_backward(dx.data(), dw.data(), db.data(), g.data(), x.data(), w.data(), mean.data(), rstd.data(), N, C);
    benchmark::DoNotOptimize(dx.data());
  }
}
BENCHMARK(BM_LayerNormFwdBwd)->Arg(128)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();

static void BM_GeluFwdBwd(benchmark::State& st) {
  configure_threads(2);
  const size_t n = size_t(st.range(0));
  auto x = rnd(n, 1), g = rnd(n, 2);
  std::vector<float> y(n), dx(n);
  for (auto _ : st) {
    act_forward(Act::gelu, y.data(), x.data(), n);
    act_backward(Act::gelu, dx.data(), g.data(), x.data(), n);
    benchmark::DoNotOptimize(dx.data());
  }
}
BENCHMARK(BM_GeluFwdBwd)->Arg(4096 * 1024)->Unit(benchmark::kMillisecond)->UseRealTime();
int main(int argc, char** argv) {
  attnlab::ensure_blas_coretype(argv);
  attnlab::keep_freed_memory();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
