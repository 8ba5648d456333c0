#pragma once
// Wall-time profile of the phases of a training step (`attnlab bench --profile`). Off by
// default: a disabled scope costs one branch. Scopes are keyed by their string literal and
// must not be opened inside OpenMP parallel regions (the table is not thread-safe).
#include <chrono>
#include <cstdio>

namespace attnlab::prof {

extern bool enabled;

void add(const char* name, double seconds);
void reset();
// One line per phase: total ms per step, share of the measured total, calls per step.
void print(std::FILE* f, int steps);

class Scope {
 public:
  explicit Scope(const char* name) : name_(enabled ? name : nullptr) {
    if (name_) t0_ = std::chrono::steady_clock::now();
  }
  ~Scope() {
    if (name_) add(name_, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count());
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  const char* name_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace attnlab::prof

#define ATTNLAB_PROF_CAT2(a, b) a##b
#define ATTNLAB_PROF_CAT(a, b) ATTNLAB_PROF_CAT2(a, b)
#define PROFILE_SCOPE(name) ::attnlab::prof::Scope ATTNLAB_PROF_CAT(prof_scope_, __LINE__)(name)
