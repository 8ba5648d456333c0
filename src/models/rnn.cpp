#include "models/rnn.h"

#include <omp.h>

#include <cmath>

#include "core/rng.h"
#include "kernels/fast_math.h"
#include "kernels/gemm.h"

namespace attnlab {

namespace {
template <class T>
inline T sig(bool erf, T z) { return erf ? T(std::erf(double(z) * 0.70710678118654752)) : fast_tanh(z); }
template <class T>
inline T dsig(bool erf, T z) {
  if (erf) return T(0.79788456080286536 * std::exp(-0.5 * double(z) * z));
  const T t = std::tanh(z);
  return T(1) - t * t;
}
}  // namespace

template <class T>
Rnn<T>::Rnn(const ModelConfig& cfg, int max_batch)
    : cfg_(cfg), ind_(cfg.kind == "indrnn"), erf_(cfg.activation == "erf"), m_(cfg.width), d_(cfg.d_in) {
  Win_ = arena.add("W_in", {m_, d_}, true);
  rec_ = ind_ ? arena.add("u", {m_}, false) : arena.add("W_hh", {m_, m_}, true);
  c_ = arena.add("c", {m_}, false);
  arena.allocate();
  const size_t n = size_t(max_batch) * cfg.max_len * m_;
  z_.resize(n); h_.resize(n); dz_.resize(n);
  out_.resize(size_t(max_batch));
  dh_.resize(size_t(max_batch) * m_);
}

template <class T>
void Rnn<T>::init(uint64_t seed) {
  const bool sym = cfg_.init == "symmetric";
  const int half = sym ? m_ / 2 : m_;
  T* W = arena.p(Win_); T* r = arena.p(rec_); T* c = arena.p(c_);
  for (int i = 0; i < m_; ++i) {
    const int src = i < half ? i : i - half;
    for (int j = 0; j < d_; ++j) W[size_t(i) * d_ + j] = T(rng_normal(seed, stream_id("W_in"), size_t(src) * d_ + j));
    c[i] = T(symmetric_readout(seed, i, half));
    if (ind_) {
      r[i] = cfg_.u_init == "pm1.5" ? (rng_uniform(seed, stream_id("u_sign"), size_t(src)) < 0.5 ? T(-1.5) : T(1.5))
                                    : T(rng_normal(seed, stream_id("u"), size_t(src)));
    }
  }
  if (!ind_) {
    // Block-diagonal diag(A, A) for symmetric init; full i.i.d. otherwise.
    const double sd = 1.0 / std::sqrt(double(half));
    for (int i = 0; i < m_; ++i)
      for (int k = 0; k < m_; ++k) {
        T v = 0;
        if (!sym) v = T(sd * rng_normal(seed, stream_id("W_hh"), size_t(i) * m_ + k));
        else if ((i < half) == (k < half)) v = T(sd * rng_normal(seed, stream_id("W_hh"), size_t(i % half) * half + (k % half)));
        r[size_t(i) * m_ + k] = v;
      }
  }
}

template <class T>
ParamCounts Rnn<T>::counts() const {
  ParamCounts pc;
  pc.total = int64_t(arena.size());
  return pc;
}

template <class T>
std::vector<std::pair<std::string, std::vector<int>>> Rnn<T>::probe_groups() const {
  return {{"W_in", {Win_}}, {ind_ ? "u" : "W_hh", {rec_}}, {"c", {c_}}};
}

template <class T>
std::vector<HeadSlice> Rnn<T>::head_slices() const {
  std::vector<HeadSlice> s;
  for (int i = 0; i < m_; ++i) {
    s.push_back({0, i, {{arena.info(c_).offset + i, 1}}});
    s.push_back({1, i, {{arena.info(rec_).offset + (ind_ ? size_t(i) : size_t(i) * m_), ind_ ? 1 : size_t(m_)}}});
    s.push_back({2, i, {{arena.info(Win_).offset + size_t(i) * d_, size_t(d_)}}});
  }
  return s;
}

// z_t = x_t W_in^T (+ u (.) h_{t-1} | + h_{t-1} W_hh^T), h_t = sigma(z_t); time-major [T, B, m].
template <class T>
const T* Rnn<T>::forward(const T* x, const int*, int B, int Tn) {
  B_ = B; T_ = Tn; x_ = x;
  if (ind_) return forward_ind();
  const int m = m_, d = d_;
  const T* W = arena.p(Win_); const T* r = arena.p(rec_); const T* c = arena.p(c_);
  for (int t = 0; t < Tn; ++t) {
    T* z = z_.data() + size_t(t) * B * m;
    // input term for all b at time t: rows x[b, t, :] have stride Tn*d
    gemm(false, true, B, m, d, T(1), x + size_t(t) * d, Tn * d, W, d, T(0), z, m);
    if (t > 0) {
      const T* hp = h_.data() + size_t(t - 1) * B * m;
      gemm(false, true, B, m, m, T(1), hp, m, r, m, T(1), z, m);
    }
    T* h = h_.data() + size_t(t) * B * m;
    for (size_t j = 0; j < size_t(B) * m; ++j) h[j] = sig(erf_, z[j]);
  }
  const T* hT = h_.data() + size_t(Tn - 1) * B * m;
  const T k = T(1.0 / std::sqrt(double(m)));
  for (int b = 0; b < B; ++b) {
    T f = 0;
    for (int i = 0; i < m; ++i) f += c[i] * hT[size_t(b) * m + i];
    out_[b] = f * k;
  }
  return out_.data();
}

// BPTT: dh_T = g c / sqrt(m); dz_t = dh_t sigma'(z_t); dh_{t-1} = dz_t (.) u | dz_t W_hh;
// dW_in = sum_t dz_t^T x_t; du = sum_t dz_t (.) h_{t-1} | dW_hh = sum_t dz_t^T h_{t-1}.
template <class T>
void Rnn<T>::backward(const T* dy) {
  if (ind_) return backward_ind(dy);
  const int B = B_, Tn = T_, m = m_, d = d_;
  const T* r = arena.p(rec_); const T* c = arena.p(c_);
  T* gW = arena.g(Win_); T* gr = arena.g(rec_); T* gc = arena.g(c_);
  const T k = T(1.0 / std::sqrt(double(m)));
  const T* hT = h_.data() + size_t(Tn - 1) * B * m;
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < m; ++i) {
      gc[i] += dy[b] * k * hT[size_t(b) * m + i];
      dh_[size_t(b) * m + i] = dy[b] * k * c[i];
    }
  for (int t = Tn - 1; t >= 0; --t) {
    T* dz = dz_.data() + size_t(t) * B * m;
    const T* z = z_.data() + size_t(t) * B * m;
    for (size_t j = 0; j < size_t(B) * m; ++j) dz[j] = dh_[j] * dsig(erf_, z[j]);
    if (t == 0) break;
    const T* hp = h_.data() + size_t(t - 1) * B * m;
    gemm(false, false, B, m, m, T(1), dz, m, r, m, T(0), dh_.data(), m);
    gemm(true, false, m, m, B, T(1), dz, m, hp, m, T(1), gr, m);
  }
  // dW_in = sum_t dz_t^T x_t
  for (int t = 0; t < Tn; ++t)
    gemm(true, false, m, d, B, T(1), dz_.data() + size_t(t) * B * m, m, x_ + size_t(t) * d, Tn * d, T(1), gW, d);
}

// IndRNN: units are independent, so each sequence runs its whole recurrence in registers-
// sized loops over the m units (vectorized), threads over sequences; h is [B, T, m]. BLAS
// would see only K = d_in GEMMs per time step here (measured: 354 ms vs this path's few ms
// for n = 4000, L = 96, m = 64).
template <class T>
const T* Rnn<T>::forward_ind() {
  const int B = B_, Tn = T_, m = m_, d = d_;
  const T* W = arena.p(Win_); const T* u = arena.p(rec_); const T* c = arena.p(c_);
  std::vector<T>& Wt = wt_;  // W_in transposed [d, m]; kept, so that a step allocates nothing
  Wt.resize(size_t(d) * m);
  for (int i = 0; i < m; ++i)
    for (int k = 0; k < d; ++k) Wt[size_t(k) * m + i] = W[size_t(i) * d + k];
  const T kf = T(1.0 / std::sqrt(double(m)));
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    const T* X = x_ + size_t(b) * Tn * d;
    T* H = h_.data() + size_t(b) * Tn * m;
    T* Z = z_.data() + size_t(b) * Tn * m;
    for (int t = 0; t < Tn; ++t) {
      T* z = Z + size_t(t) * m;
      T* h = H + size_t(t) * m;
      const T* hp = t > 0 ? H + size_t(t - 1) * m : nullptr;
      for (int i = 0; i < m; ++i) z[i] = hp ? u[i] * hp[i] : T(0);
      for (int k = 0; k < d; ++k) {
        const T xk = X[size_t(t) * d + k];
        const T* w = Wt.data() + size_t(k) * m;
#pragma omp simd
        for (int i = 0; i < m; ++i) z[i] += w[i] * xk;
      }
      if (erf_) {
        for (int i = 0; i < m; ++i) h[i] = sig(true, z[i]);
      } else {
#pragma omp simd
        for (int i = 0; i < m; ++i) h[i] = fast_tanh(z[i]);
      }
    }
    const T* hT = H + size_t(Tn - 1) * m;
    T f = 0;
    for (int i = 0; i < m; ++i) f += c[i] * hT[i];
    out_[b] = f * kf;
  }
  return out_.data();
}

// BPTT per sequence: dh = g c / sqrt m; for t = T..1: dz = dh sigma'(z_t); dW_in += dz x_t^T;
// du += dz h_{t-1}; dh = dz u. Per-thread partial sums, added in thread order.
template <class T>
void Rnn<T>::backward_ind(const T* dy) {
  const int B = B_, Tn = T_, m = m_, d = d_;
  const T* u = arena.p(rec_); const T* c = arena.p(c_);
  const T kf = T(1.0 / std::sqrt(double(m)));
  const int nthreads = omp_get_max_threads();
  // Per thread: dWt [d, m], du [m], dc [m], then the scratch dh [m], dz [m]. Kept across steps.
  const size_t per = size_t(d + 4) * m;
  part_.assign(size_t(nthreads) * per, T(0));
#pragma omp parallel
  {
    T* acc = part_.data() + size_t(omp_get_thread_num()) * per;
    T* dh = acc + size_t(d + 2) * m;
    T* dz = dh + m;
#pragma omp for schedule(static)
    for (int b = 0; b < B; ++b) {
      const T* X = x_ + size_t(b) * Tn * d;
      const T* H = h_.data() + size_t(b) * Tn * m;
      const T* Z = z_.data() + size_t(b) * Tn * m;
      const T g = dy[b] * kf;
      T* du = acc + size_t(d) * m;
      T* dc = du + m;
      const T* hT = H + size_t(Tn - 1) * m;
      for (int i = 0; i < m; ++i) { dc[i] += g * hT[i]; dh[i] = g * c[i]; }
      for (int t = Tn - 1; t >= 0; --t) {
        const T* h = H + size_t(t) * m;
        const T* z = Z + size_t(t) * m;
        if (erf_) {
          for (int i = 0; i < m; ++i) dz[i] = dh[i] * dsig(true, z[i]);
        } else {
#pragma omp simd
          for (int i = 0; i < m; ++i) dz[i] = dh[i] * (T(1) - h[i] * h[i]);
        }
        for (int k = 0; k < d; ++k) {
          const T xk = X[size_t(t) * d + k];
          T* dw = acc + size_t(k) * m;
#pragma omp simd
          for (int i = 0; i < m; ++i) dw[i] += dz[i] * xk;
        }
        if (t == 0) break;
        const T* hp = H + size_t(t - 1) * m;
#pragma omp simd
        for (int i = 0; i < m; ++i) { du[i] += dz[i] * hp[i]; dh[i] = dz[i] * u[i]; }
      }
    }
  }
  T* gW = arena.g(Win_); T* gu = arena.g(rec_); T* gc = arena.g(c_);
  for (int t = 0; t < nthreads; ++t) {
    const T* acc = part_.data() + size_t(t) * per;
    for (int i = 0; i < m; ++i) {
      for (int k = 0; k < d; ++k) gW[size_t(i) * d + k] += acc[size_t(k) * m + i];
      gu[i] += acc[size_t(d) * m + i];
      gc[i] += acc[size_t(d + 1) * m + i];
    }
  }
}

template class Rnn<float>;
template class Rnn<double>;

void indrnn_keys(Keys& k, ModelConfig& m) {
  width_keys(k, m, true);
  k.choice("u_init", m.u_init, {"pm1.5", "normal"});  // recurrent weights: +-1.5 (the authors' code, default) or N(0, 1)
}

void rnn_keys(Keys& k, ModelConfig& m) { width_keys(k, m, true); }

}  // namespace attnlab
