#include "tasks/readout.h"

#include <cmath>

#include "core/rng.h"

namespace attnlab {

namespace {
std::vector<float> normal_vec(size_t n, uint64_t seed, const std::string& name, double std) {
  std::vector<float> v(n);
  const uint64_t s = stream_id(name);
  for (size_t i = 0; i < n; ++i) v[i] = float(std * rng_normal(seed, s, i));
  return v;
}
}  // namespace

const std::vector<std::string>& Readout::kinds() {
  static const std::vector<std::string> k = {"linear", "mlp", "deep_mlp", "parity", "majority", "sum"};
  return k;
}

Readout::Readout(const std::string& kind, int n, int d_out, int hidden, uint64_t seed, const std::string& prefix)
    : kind_(kind), n_(n), d_out_(d_out), hidden_(hidden) {
  const std::string p = prefix + "/";
  if (kind == "linear") {
    A_ = normal_vec(size_t(d_out) * n, seed, p + "A", 1.0 / std::sqrt(double(n)));
  } else if (kind == "mlp") {  // the streams of the original sparse_memory mlp readout
    W_.push_back(normal_vec(size_t(hidden) * n, seed, p + "W", 1.0 / std::sqrt(double(n))));
    c_.push_back(normal_vec(size_t(hidden), seed, p + "c", 0.1));
    a_ = normal_vec(size_t(d_out) * hidden, seed, p + "a", 1.0 / std::sqrt(double(hidden)));
  } else if (kind == "deep_mlp") {
    for (int l = 0; l < 3; ++l) {
      const int fan_in = l == 0 ? n : hidden;
      W_.push_back(normal_vec(size_t(hidden) * fan_in, seed, p + "deep_W" + std::to_string(l), 1.5 / std::sqrt(double(fan_in))));
      c_.push_back(normal_vec(size_t(hidden), seed, p + "deep_c" + std::to_string(l), 0.1));
    }
    a_ = normal_vec(size_t(d_out) * hidden, seed, p + "deep_a", 1.0 / std::sqrt(double(hidden)));
  }
}

void Readout::apply(const float* z, float* y) const {
  if (kind_ == "linear") {
    for (int j = 0; j < d_out_; ++j) {
      double s = 0;
      for (int i = 0; i < n_; ++i) s += double(A_[size_t(j) * n_ + i]) * z[i];
      y[j] = float(s);
    }
    return;
  }
  if (kind_ == "sum") {  // every memory weighs the same: Var y = 1 for unit-variance z
    double s = 0;
    for (int i = 0; i < n_; ++i) s += z[i];
    y[0] = float(s / std::sqrt(double(n_)));
    return;
  }
  if (kind_ == "parity" || kind_ == "majority") {
    double prod = 1, sum = 0;
    for (int i = 0; i < n_; ++i) {
      const double s = z[i] > 0 ? 1.0 : z[i] < 0 ? -1.0 : 0.0;
      prod *= s;
      sum += s;
    }
    y[0] = float(kind_ == "parity" ? prod : sum > 0 ? 1.0 : sum < 0 ? -1.0 : 0.0);
    return;
  }
  // mlp and deep_mlp: tanh layers, then a linear output. Scratch per thread: no allocation
  // once warm (tasks fill batches from an OpenMP loop).
  static thread_local std::vector<double> h, next;
  h.assign(z, z + n_);
  for (size_t l = 0; l < W_.size(); ++l) {
    const size_t fan_in = h.size();
    next.resize(size_t(hidden_));
    for (int k = 0; k < hidden_; ++k) {
      double s = c_[l][size_t(k)];
      const float* w = W_[l].data() + size_t(k) * fan_in;
      for (size_t i = 0; i < fan_in; ++i) s += double(w[i]) * h[i];
      next[size_t(k)] = std::tanh(s);
    }
    h.swap(next);
  }
  for (int j = 0; j < d_out_; ++j) {
    double s = 0;
    for (int k = 0; k < hidden_; ++k) s += a_[size_t(j) * hidden_ + k] * h[size_t(k)];
    y[j] = float(s);
  }
}

}  // namespace attnlab
