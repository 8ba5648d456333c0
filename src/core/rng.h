#pragma once
// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011). Every value is a pure
// function of (seed, stream, index): initial weights and data samples do not depend on the
// order in which they are drawn, so runs are reproducible and samples can be made lazily.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace attnlab {

struct Philox {
  static inline void round(uint32_t c[4], const uint32_t k[2]) {
    const uint64_t p0 = uint64_t(0xD2511F53u) * c[0];
    const uint64_t p1 = uint64_t(0xCD9E8D57u) * c[2];
    const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
    const uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    const uint32_t n0 = hi1 ^ c[1] ^ k[0], n2 = hi0 ^ c[3] ^ k[1];
    c[0] = n0; c[1] = lo1; c[2] = n2; c[3] = lo0;
  }
  // Four 32-bit words from key=seed and counter=(index, stream).
  static inline void block(uint64_t seed, uint64_t stream, uint64_t index, uint32_t out[4]) {
    uint32_t c[4] = {uint32_t(index), uint32_t(index >> 32), uint32_t(stream), uint32_t(stream >> 32)};
    uint32_t k[2] = {uint32_t(seed), uint32_t(seed >> 32)};
    for (int r = 0; r < 10; ++r) {
      round(c, k);
      k[0] += 0x9E3779B9u;
      k[1] += 0xBB67AE85u;
    }
    for (int i = 0; i < 4; ++i) out[i] = c[i];
  }
};

// Uniform in (0, 1): 53 random bits, never exactly 0.
inline double rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  uint32_t w[4];
  Philox::block(seed, stream, index, w);
  const uint64_t bits = (uint64_t(w[0]) << 21) ^ uint64_t(w[1]);
  return (double(bits & ((uint64_t(1) << 53) - 1)) + 0.5) / 9007199254740992.0;
}

// The two uniforms in (0, 1) of one Philox block that Box-Muller turns into a normal.
inline void normal_uniforms(uint64_t seed, uint64_t stream, uint64_t index, double& u1, double& u2) {
  uint32_t w[4];
  Philox::block(seed, stream, index, w);
  const uint64_t b1 = ((uint64_t(w[0]) << 20) ^ uint64_t(w[1])) & ((uint64_t(1) << 52) - 1);
  u1 = (double(b1) + 0.5) / 4503599627370496.0;
  u2 = (double(w[2]) + 0.5) / 4294967296.0;
}

// Standard normal by Box-Muller on the two halves of one Philox block.
inline double rng_normal(uint64_t seed, uint64_t stream, uint64_t index) {
  double u1, u2;
  normal_uniforms(seed, stream, index, u1, u2);
  const double r = std::sqrt(-2.0 * std::log(u1));
  return r * std::cos(6.283185307179586 * u2);
}

// out[i] = rng_normal(seed, stream, first + i) for i < n, up to the last bits of the double
// (vector log and cos, core/rng_batch.cpp): the same value once rounded to float, and ~7x
// faster. For data drawn in float; code that keeps the doubles uses rng_normal.
void rng_normals(uint64_t seed, uint64_t stream, uint64_t first, size_t n, double* out);

// Uniform integer in [0, n).
inline uint64_t rng_below(uint64_t seed, uint64_t stream, uint64_t index, uint64_t n) {
  uint32_t w[4];
  Philox::block(seed, stream, index, w);
  const uint64_t x = (uint64_t(w[0]) << 32) | w[1];
  return uint64_t((static_cast<unsigned __int128>(x) * n) >> 64);
}

// Stream ids are names hashed with FNV-1a, so each tensor or data split has its own stream.
constexpr uint64_t stream_id(std::string_view name) {
  uint64_t h = 1469598103934665603ull;
  for (char ch : name) {
    h ^= uint8_t(ch);
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace attnlab
