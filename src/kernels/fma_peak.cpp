// The FMA roofline loop (fma_peak.h). Written with intrinsics on purpose: it must keep 12
// independent accumulators in registers (enough to cover the FMA latency of 4 cycles on 2-3
// ports) and touch no memory, which no library call does.
#include "kernels/fma_peak.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>

namespace attnlab {

namespace {

constexpr int kAcc = 12;  // independent accumulator registers per thread

__attribute__((target("avx512f"))) float loop_avx512(long iters) {
  __m512 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_set1_ps(float(i) * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long n = 0; n < iters; ++n)
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < kAcc; ++i) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) float loop_avx2(long iters) {
  __m256 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm256_set1_ps(float(i) * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long n = 0; n < iters; ++n)
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 s = acc[0];
  for (int i = 1; i < kAcc; ++i) s = _mm256_add_ps(s, acc[i]);
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  float r = 0;
  for (float x : out) r += x;
  return r;
}

float loop_sse(long iters) {  // mul + add: two flops per lane, like an FMA
  __m128 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm_set1_ps(float(i) * 1e-3f);
  const __m128 a = _mm_set1_ps(0.999999f), b = _mm_set1_ps(1e-7f);
  for (long n = 0; n < iters; ++n)
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm_add_ps(_mm_mul_ps(acc[i], a), b);
  __m128 s = acc[0];
  for (int i = 1; i < kAcc; ++i) s = _mm_add_ps(s, acc[i]);
  alignas(16) float out[4];
  _mm_store_ps(out, s);
  return out[0] + out[1] + out[2] + out[3];
}

}  // namespace

FmaPeak measure_fma_peak(int threads, double seconds) {
  __builtin_cpu_init();
  FmaPeak p;
  float (*loop)(long) = loop_sse;
  p.vector_bits = 128, p.isa = "sse";
  if (__builtin_cpu_supports("avx512f")) loop = loop_avx512, p.vector_bits = 512, p.isa = "avx512f";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) loop = loop_avx2, p.vector_bits = 256, p.isa = "avx2+fma";
  const double flops_per_iter = 2.0 * kAcc * (p.vector_bits / 32);
  // Calibrate the iterations to about `seconds` on one thread, then run every thread at once.
  long iters = 1 << 20;
  volatile float sink = 0;
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    sink = sink + loop(iters);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s > seconds / 4 || iters > (1L << 40)) { iters = long(double(iters) * seconds / std::max(s, 1e-9)); break; }
    iters *= 4;
  }
  for (int round = 0; round < 3; ++round) {
    double worst = 0;  // the slowest thread sets the wall time
#pragma omp parallel num_threads(threads) reduction(max : worst)
    {
#pragma omp barrier
      const auto t0 = std::chrono::steady_clock::now();
      const float r = loop(iters);
      worst = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (r == 12345.f) sink = sink + r;  // keep the result alive
    }
    p.gflops = std::max(p.gflops, threads * flops_per_iter * double(iters) / worst / 1e9);
  }
  return p;
}

}  // namespace attnlab
