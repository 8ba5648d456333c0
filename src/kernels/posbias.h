#pragma once
// Relative positional biases. Every kind is turned into a table bias[h][n], n = t - s >= 0
// (n < T), which the attention kernel adds to its scores; the backward maps the table's
// gradient back onto the kind's parameters.
#include <cmath>
#include <vector>

namespace attnlab {

enum class Rpe { none, lin, log, t5 };

// ALiBi slopes 2^(-8(h+1)/H).
inline double alibi_slope(int h, int H) { return std::pow(2.0, -8.0 * (h + 1) / H); }

// T5 unidirectional bucket of a non-negative distance n.
inline int t5_bucket(int n, int num_buckets, int max_distance) {
  const int exact = num_buckets / 2;
  if (n < exact) return n;
  const double r = std::log(double(n) / exact) / std::log(double(max_distance) / exact);
  int b = exact + int(r * (num_buckets - exact));
  return b < num_buckets - 1 ? b : num_buckets - 1;
}

struct RpeSpec {
  Rpe kind = Rpe::none;
  bool learnable = true;  // lin only: p_h learnable, else fixed ALiBi slopes
  int buckets = 32;       // t5
  int max_distance = 128; // t5
};

// table[H, T] from the parameters p ([H] for lin/log, [H, buckets] for t5; unused if fixed).
template <class T>
void posbias_forward(T* table, const RpeSpec& s, const T* p, int H, int Tlen) {
  for (int h = 0; h < H; ++h)
    for (int n = 0; n < Tlen; ++n) {
      T v = 0;
      switch (s.kind) {
        case Rpe::none: v = 0; break;
        case Rpe::lin: v = -(s.learnable ? p[h] : T(alibi_slope(h, H))) * T(n); break;
        case Rpe::log: v = -p[h] * T(std::log1p(double(n))); break;
        case Rpe::t5: v = p[h * s.buckets + t5_bucket(n, s.buckets, s.max_distance)]; break;
      }
      table[h * Tlen + n] = v;
    }
}

// dp += d table / d p contracted with dtable[H, T]
template <class T>
void posbias_backward(T* dp, const RpeSpec& s, const T* dtable, int H, int Tlen) {
  for (int h = 0; h < H; ++h)
    for (int n = 0; n < Tlen; ++n) {
      const T g = dtable[h * Tlen + n];
      switch (s.kind) {
        case Rpe::none: break;
        case Rpe::lin: if (s.learnable) dp[h] -= g * T(n); break;
        case Rpe::log: dp[h] -= g * T(std::log1p(double(n))); break;
        case Rpe::t5: dp[h * s.buckets + t5_bucket(n, s.buckets, s.max_distance)] += g; break;
      }
    }
}

}  // namespace attnlab
