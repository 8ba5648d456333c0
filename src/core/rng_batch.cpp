// rng_normals (declared in core/rng.h): many consecutive standard normals at once.
// Compiled with -ffast-math (CMakeLists.txt), which is what makes glibc declare its vector
// log and cos (libmvec): GCC then runs the Box-Muller step on 8 doubles per AVX-512 call.
// Drawing the retrieval task's keys and values one rng_normal at a time (scalar libm log and
// cos, ~38 ns a value) was most of p1 E2's step at T = 1024; this takes ~5 ns a value.
// libmvec's log and cos are within a few ulp of libm's, not bit-equal: the doubles differ
// from rng_normal's in the last bits (relative 1e-15 at most), which rounding to float
// removes (tests/test_rng.cpp: 4M of 4M samples the same float).
#include <cmath>

#include "core/rng.h"

namespace attnlab {

void rng_normals(uint64_t seed, uint64_t stream, uint64_t first, size_t n, double* out) {
  constexpr size_t kChunk = 256;
  alignas(64) double u1[kChunk], u2[kChunk];
  for (size_t s = 0; s < n; s += kChunk) {
    const size_t m = n - s < kChunk ? n - s : kChunk;
    for (size_t i = 0; i < m; ++i) normal_uniforms(seed, stream, first + s + i, u1[i], u2[i]);
#pragma omp simd
    for (size_t i = 0; i < m; ++i) out[s + i] = std::sqrt(-2.0 * std::log(u1[i])) * std::cos(6.283185307179586 * u2[i]);
  }
}

}  // namespace attnlab
