#pragma once
// Projection of each head onto a ball around its initialization (projected GD/SGD):
// ||theta_{i,g} - theta_{i,g}(0)||_2 <= rho_g / sqrt(m) for every head i and group g
// (g = c, u, w), by radial clipping of the displacement. Returns how many (head, group)
// balls it had to clip: 0 when every head was inside its ball.
#include <cmath>
#include <span>
#include <vector>

#include "models/model.h"

namespace attnlab {

template <class T>
size_t project_heads(std::span<T> params, std::span<const T> init, const std::vector<HeadSlice>& slices,
                     const std::vector<double>& rho, int m) {
  const double inv = 1.0 / std::sqrt(double(m));
  size_t clipped = 0;
#pragma omp parallel for schedule(static) reduction(+ : clipped)
  for (size_t s = 0; s < slices.size(); ++s) {
    const HeadSlice& h = slices[s];
    const double r = rho[size_t(h.group)] * inv;
    double n2 = 0;
    for (auto [off, len] : h.ranges)
      for (size_t j = off; j < off + len; ++j) n2 += double(params[j] - init[j]) * double(params[j] - init[j]);
    const double n = std::sqrt(n2);
    if (n <= r) continue;
    const double k = r / n;
    for (auto [off, len] : h.ranges)
      for (size_t j = off; j < off + len; ++j) params[j] = T(init[j] + (params[j] - init[j]) * k);
    ++clipped;
  }
  return clipped;
}

}  // namespace attnlab
