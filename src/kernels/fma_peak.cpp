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

// Twelve named accumulators, not an array, and optimized whatever the build: at -O1 with the
// sanitizers an array of vectors lived on the stack and the loop measured memory, not FMAs.
#define ATTNLAB_FMA12(F) \
  a0 = F(a0, m, b); a1 = F(a1, m, b); a2 = F(a2, m, b); a3 = F(a3, m, b); a4 = F(a4, m, b); a5 = F(a5, m, b); \
  a6 = F(a6, m, b); a7 = F(a7, m, b); a8 = F(a8, m, b); a9 = F(a9, m, b); a10 = F(a10, m, b); a11 = F(a11, m, b);
#define ATTNLAB_NO_SAN __attribute__((optimize("O2"), no_sanitize("address", "undefined")))

__attribute__((target("avx512f"))) ATTNLAB_NO_SAN float loop_avx512(long iters) {
  __m512 a0 = _mm512_set1_ps(0.f), a1 = _mm512_set1_ps(1e-3f), a2 = _mm512_set1_ps(2e-3f), a3 = _mm512_set1_ps(3e-3f),
         a4 = _mm512_set1_ps(4e-3f), a5 = _mm512_set1_ps(5e-3f), a6 = _mm512_set1_ps(6e-3f), a7 = _mm512_set1_ps(7e-3f),
         a8 = _mm512_set1_ps(8e-3f), a9 = _mm512_set1_ps(9e-3f), a10 = _mm512_set1_ps(1e-2f), a11 = _mm512_set1_ps(1.1e-2f);
  const __m512 m = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long n = 0; n < iters; ++n) { ATTNLAB_FMA12(_mm512_fmadd_ps) }
  const __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                                 _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)),
                                               _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11))));
  alignas(64) float out[16];  // not _mm512_reduce_add_ps: GCC 12's header warns on it
  _mm512_store_ps(out, s);
  float r = 0;
  for (float x : out) r += x;
  return r;
}

__attribute__((target("avx2,fma"))) ATTNLAB_NO_SAN float loop_avx2(long iters) {
  __m256 a0 = _mm256_set1_ps(0.f), a1 = _mm256_set1_ps(1e-3f), a2 = _mm256_set1_ps(2e-3f), a3 = _mm256_set1_ps(3e-3f),
         a4 = _mm256_set1_ps(4e-3f), a5 = _mm256_set1_ps(5e-3f), a6 = _mm256_set1_ps(6e-3f), a7 = _mm256_set1_ps(7e-3f),
         a8 = _mm256_set1_ps(8e-3f), a9 = _mm256_set1_ps(9e-3f), a10 = _mm256_set1_ps(1e-2f), a11 = _mm256_set1_ps(1.1e-2f);
  const __m256 m = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long n = 0; n < iters; ++n) { ATTNLAB_FMA12(_mm256_fmadd_ps) }
  const __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                                 _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)),
                                               _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11))));
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  float r = 0;
  for (float x : out) r += x;
  return r;
}

inline __m128 mul_add(__m128 a, __m128 m, __m128 b) { return _mm_add_ps(_mm_mul_ps(a, m), b); }

ATTNLAB_NO_SAN float loop_sse(long iters) {  // mul + add: two flops per lane, like an FMA
  __m128 a0 = _mm_set1_ps(0.f), a1 = _mm_set1_ps(1e-3f), a2 = _mm_set1_ps(2e-3f), a3 = _mm_set1_ps(3e-3f),
         a4 = _mm_set1_ps(4e-3f), a5 = _mm_set1_ps(5e-3f), a6 = _mm_set1_ps(6e-3f), a7 = _mm_set1_ps(7e-3f),
         a8 = _mm_set1_ps(8e-3f), a9 = _mm_set1_ps(9e-3f), a10 = _mm_set1_ps(1e-2f), a11 = _mm_set1_ps(1.1e-2f);
  const __m128 m = _mm_set1_ps(0.999999f), b = _mm_set1_ps(1e-7f);
  for (long n = 0; n < iters; ++n) { ATTNLAB_FMA12(mul_add) }
  const __m128 s = _mm_add_ps(_mm_add_ps(_mm_add_ps(a0, a1), _mm_add_ps(a2, a3)),
                              _mm_add_ps(_mm_add_ps(_mm_add_ps(a4, a5), _mm_add_ps(a6, a7)),
                                         _mm_add_ps(_mm_add_ps(a8, a9), _mm_add_ps(a10, a11))));
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
