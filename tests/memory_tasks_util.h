#pragma once
// Helpers of the memory-task tests (test_memory_tasks.cpp, test_kernel_text_tasks.cpp): a
// run config from a [task] table, index ranges, the documented random matrices, relative
// comparison, and a scratch directory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "core/rng.h"
#include "io/config.h"

namespace memtask_test {

using namespace attnlab;
namespace fs = std::filesystem;

// A run config from a [task] table (and overrides); the model and train sections keep their
// defaults, so the task's own validation runs as it does for `attnlab train`.
inline RunConfig config(const std::string& task_toml, const std::vector<std::string>& overrides = {}) {
  return parse_run_config("seed = 5\n[task]\n" + task_toml, "memtasks.toml", overrides);
}

inline std::vector<int64_t> iota(int64_t from, int n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[size_t(i)] = from + i;
  return v;
}

// A fixed random matrix as the header documents: entry i of stream `name` times `std`.
inline std::vector<double> normal_matrix(uint64_t seed, const std::string& name, size_t n, double std) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = double(float(std * rng_normal(seed, stream_id(name), i)));
  return v;
}

inline double sgn(double v) { return v > 0 ? 1.0 : v < 0 ? -1.0 : 0.0; }

// |got - want| <= 1e-5 relative (with a tiny absolute floor for targets near 0).
inline ::testing::AssertionResult near_rel(double got, double want) {
  const double tol = 1e-5 * std::fabs(want) + 1e-7;
  if (std::fabs(got - want) <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << ", want " << want << " (diff " << got - want << ", tol " << tol << ")";
}

// A scratch directory of this test process.
inline fs::path scratch(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("attnlab_memtasks_" + std::to_string(::getpid())) / name;
  fs::create_directories(d);
  return d;
}

}  // namespace memtask_test
