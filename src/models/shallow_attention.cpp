#include "models/shallow_attention.h"

#include <cmath>

#include "core/rng.h"
#include "kernels/gemm.h"

namespace attnlab {

namespace {
template <class T>
inline T sigma(bool erf, T z) { return erf ? T(std::erf(double(z) * 0.70710678118654752)) : std::tanh(z); }
template <class T>
inline T dsigma(bool erf, T z) {
  if (erf) return T(0.79788456080286536 * std::exp(-0.5 * double(z) * z));  // sqrt(2/pi) e^{-z^2/2}
  const T t = std::tanh(z);
  return T(1) - t * t;
}
}  // namespace

template <class T>
ShallowAttention<T>::ShallowAttention(const ModelConfig& cfg, int max_batch)
    : cfg_(cfg), m_(cfg.width), d_(cfg.d_in), erf_(cfg.activation == "erf"),
      scale_(cfg.score_scale > 0 ? cfg.score_scale : 1.0) {
  W_ = arena.add("W", {m_, d_, d_}, true);
  U_ = arena.add("U", {m_, d_}, true);
  c_ = arena.add("c", {m_}, false);
  arena.allocate();
  const size_t B = size_t(max_batch), L = size_t(cfg.max_len), m = size_t(m_), d = size_t(d_);
  q_.resize(B * m * d); p_.resize(B * m * L); a_.resize(B * m * d); z_.resize(B * m); out_.resize(B);
  dq_.resize(B * m * d);
}

template <class T>
void ShallowAttention<T>::init(uint64_t seed) {
  const int half = cfg_.init == "symmetric" ? m_ / 2 : m_;
  T* W = arena.p(W_); T* U = arena.p(U_); T* c = arena.p(c_);
  const size_t dd = size_t(d_) * d_;
  for (int i = 0; i < m_; ++i) {
    const int src = i < half ? i : i - half;  // symmetric: head i copies head i - m/2
    for (size_t j = 0; j < dd; ++j) W[i * dd + j] = T(rng_normal(seed, stream_id("W"), src * dd + j));
    for (int j = 0; j < d_; ++j) U[i * d_ + j] = T(rng_normal(seed, stream_id("U"), size_t(src) * d_ + j));
    const T sign = rng_uniform(seed, stream_id("c"), size_t(src)) < 0.5 ? T(-1) : T(1);
    c[i] = i < half ? sign : -sign;
  }
}

template <class T>
ParamCounts ShallowAttention<T>::counts() const {
  ParamCounts pc;
  pc.total = int64_t(arena.size());
  pc.attention = int64_t(m_) * d_ * d_;
  pc.attention_budget = int64_t(m_) * d_;
  return pc;
}

template <class T>
std::vector<HeadSlice> ShallowAttention<T>::head_slices() const {
  std::vector<HeadSlice> s;
  const size_t dd = size_t(d_) * d_;
  for (int i = 0; i < m_; ++i) {
    s.push_back({0, i, {{arena.info(c_).offset + i, 1}}});
    s.push_back({1, i, {{arena.info(U_).offset + size_t(i) * d_, size_t(d_)}}});
    s.push_back({2, i, {{arena.info(W_).offset + i * dd, dd}}});
  }
  return s;
}

// Forward, per sequence b (threads over b):
//   q_i = W_i x_T (one GEMM for all heads: Q[B, m*d] = X_T[B, d] W^T[d, m*d]),
//   p_i = softmax_t(s * <x_t, q_i>), a_i = sum_t p_it x_t, z_i = <U_i, a_i>, f = sum_i c_i sigma(z_i) / sqrt(m)
template <class T>
const T* ShallowAttention<T>::forward(const T* x, const int*, int B, int Tn) {
  B_ = B; T_ = Tn; x_ = x;
  const int m = m_, d = d_;
  const T* W = arena.p(W_); const T* U = arena.p(U_); const T* c = arena.p(c_);
  const T inv_sqrt_m = T(1.0 / std::sqrt(double(m)));
  // X_T rows are strided by T*d in x: lda = Tn*d.
  gemm(false, true, B, m * d, d, T(1), x + size_t(Tn - 1) * d, Tn * d, W, d, T(0), q_.data(), m * d);
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    const T* X = x + size_t(b) * Tn * d;
    T f = 0;
    for (int i = 0; i < m; ++i) {
      const T* q = q_.data() + (size_t(b) * m + i) * d;
      T* p = p_.data() + (size_t(b) * m + i) * Tn;
      T mx = -INFINITY;
      for (int t = 0; t < Tn; ++t) {
        T s = 0;
        for (int k = 0; k < d; ++k) s += X[size_t(t) * d + k] * q[k];
        p[t] = T(scale_) * s;
        mx = std::max(mx, p[t]);
      }
      T sum = 0;
      for (int t = 0; t < Tn; ++t) { p[t] = std::exp(p[t] - mx); sum += p[t]; }
      T* a = a_.data() + (size_t(b) * m + i) * d;
      for (int k = 0; k < d; ++k) a[k] = 0;
      const T inv = T(1) / sum;
      for (int t = 0; t < Tn; ++t) {
        p[t] *= inv;
        for (int k = 0; k < d; ++k) a[k] += p[t] * X[size_t(t) * d + k];
      }
      T z = 0;
      for (int k = 0; k < d; ++k) z += U[size_t(i) * d + k] * a[k];
      z_[size_t(b) * m + i] = z;
      f += c[i] * sigma(erf_, z);
    }
    out_[b] = f * inv_sqrt_m;
  }
  return out_.data();
}

// Backward: dc_i = sum_b g_b sigma(z_bi)/sqrt(m); dz = g c_i sigma'(z)/sqrt(m); dU_i = sum_b dz a_bi;
// da = dz U_i; dp_t = <da, x_t>; ds_t = p_t (dp_t - sum_t' p_t' dp_t'); dq = s sum_t ds_t x_t;
// dW_i = sum_b dq_bi x_T^T (one GEMM: dW[m*d, d] = dQ^T[m*d, B] X_T[B, d]).
template <class T>
void ShallowAttention<T>::backward(const T* dy) {
  const int B = B_, Tn = T_, m = m_, d = d_;
  const T* U = arena.p(U_); const T* c = arena.p(c_);
  T* gU = arena.g(U_); T* gc = arena.g(c_);
  const T inv_sqrt_m = T(1.0 / std::sqrt(double(m)));
  // dU and dc: threads over heads (each head's rows are written by one thread; deterministic).
#pragma omp parallel for schedule(static)
  for (int i = 0; i < m; ++i) {
    T sc = 0;
    for (int b = 0; b < B; ++b) {
      const T z = z_[size_t(b) * m + i];
      const T g = dy[b] * inv_sqrt_m;
      sc += g * sigma(erf_, z);
      const T dz = g * c[i] * dsigma(erf_, z);
      const T* a = a_.data() + (size_t(b) * m + i) * d;
      for (int k = 0; k < d; ++k) gU[size_t(i) * d + k] += dz * a[k];
    }
    gc[i] += sc;
  }
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    const T* X = x_ + size_t(b) * Tn * d;
    const T g = dy[b] * inv_sqrt_m;
    std::vector<T> dp(static_cast<size_t>(Tn));
    for (int i = 0; i < m; ++i) {
      const T dz = g * c[i] * dsigma(erf_, z_[size_t(b) * m + i]);
      const T* p = p_.data() + (size_t(b) * m + i) * Tn;
      T* dq = dq_.data() + (size_t(b) * m + i) * d;
      // dp_t = dz <U_i, x_t>
      T D = 0;
      for (int t = 0; t < Tn; ++t) {
        T s = 0;
        for (int k = 0; k < d; ++k) s += U[size_t(i) * d + k] * X[size_t(t) * d + k];
        dp[t] = dz * s;
        D += p[t] * dp[t];
      }
      for (int k = 0; k < d; ++k) dq[k] = 0;
      for (int t = 0; t < Tn; ++t) {
        const T ds = T(scale_) * p[t] * (dp[t] - D);
        for (int k = 0; k < d; ++k) dq[k] += ds * X[size_t(t) * d + k];
      }
    }
  }
  gemm(true, false, m * d, d, B, T(1), dq_.data(), m * d, x_ + size_t(Tn - 1) * d, Tn * d, T(1), arena.g(W_), d);
}

template <class T>
double ShallowAttention<T>::attention_entropy() const {
  double h = 0;
  const size_t rows = size_t(B_) * m_;
  for (size_t r = 0; r < rows; ++r)
    for (int t = 0; t < T_; ++t) {
      const double p = p_[r * T_ + t];
      if (p > 0) h -= p * std::log(p);
    }
  return rows ? h / double(rows) : NAN;
}

template class ShallowAttention<float>;
template class ShallowAttention<double>;

}  // namespace attnlab
