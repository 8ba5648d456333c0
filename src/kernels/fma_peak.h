#pragma once
// The cores' floating-point roofline: a register-blocked FMA loop (independent accumulators,
// no memory traffic) at the widest vector width this CPU runs. `attnlab bench` reports each
// model's throughput against it: one OpenBLAS call is not the machine's peak (SGEMM n = 2048
// reached 41% of this loop's rate on 2 Zen 5 cores).
#include <string>

namespace attnlab {

struct FmaPeak {
  double gflops = 0;     // single-precision GFLOP/s over all threads (an FMA counts 2)
  int vector_bits = 0;   // 512 (AVX-512F), 256 (AVX2 + FMA) or 128 (SSE, mul + add)
  std::string isa;       // "avx512f", "avx2+fma" or "sse"
};

// Runs the loop on `threads` OpenMP threads at once (each its own accumulators) for about
// `seconds` and returns the best of three rounds. Must run where OpenMP may (a child process).
FmaPeak measure_fma_peak(int threads, double seconds = 0.2);

}  // namespace attnlab
