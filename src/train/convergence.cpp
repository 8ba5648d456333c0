#include "train/convergence.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

namespace attnlab {

Convergence convergence_of(const std::vector<std::pair<int64_t, double>>& vals, int64_t steps) {
  std::vector<std::pair<double, double>> pts;  // (step, loss), finite, from 80% of the steps on
  for (const auto& [s, v] : vals)
    if (std::isfinite(v) && double(s) >= 0.8 * double(steps)) pts.emplace_back(double(s), v);
  if (pts.size() < 2) {
    pts.clear();
    for (size_t i = vals.size(); i-- > 0 && pts.size() < 2;)
      if (std::isfinite(vals[i].second)) pts.insert(pts.begin(), {double(vals[i].first), vals[i].second});
  }
  Convergence c;
  if (pts.size() < 2 || steps <= 0) {
    c.final_slope = NAN;
    return c;
  }
  double mx = 0, my = 0;
  for (const auto& [x, y] : pts) { mx += x / double(pts.size()); my += y / double(pts.size()); }
  double sxx = 0, sxy = 0;
  for (const auto& [x, y] : pts) { sxx += (x - mx) * (x - mx); sxy += (x - mx) * (y - my); }
  if (!(sxx > 0) || !(std::fabs(my) > 0)) {
    c.final_slope = NAN;
    return c;
  }
  c.final_slope = sxy / sxx * (double(steps) / 10.0) / std::fabs(my);
  c.converged = c.final_slope >= -kConvergeTol;
  return c;
}

Convergence convergence_of_metrics(const std::string& metrics_path, int64_t steps) {
  std::vector<std::pair<int64_t, double>> vals;
  std::ifstream f(metrics_path);
  for (std::string line; std::getline(f, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("step") || !j["step"].is_number() || !j.contains("val_loss")) continue;
    vals.emplace_back(j["step"].get<int64_t>(), j["val_loss"].is_number() ? j["val_loss"].get<double>() : NAN);
  }
  return convergence_of(vals, steps);
}

}  // namespace attnlab
