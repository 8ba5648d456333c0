#include "models/rnn.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "core/rng.h"
#include "kernels/fast_math.h"
#include "kernels/gemm.h"
#include "kernels/indrnn_blocked.h"
#include "kernels/shared_channels.h"

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
  // z_, h_, dz_ ([B, T, m]) are sized by the generic paths when first used: the blocked IndRNN
  // stores nothing of size B * T.
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
  // "memory": the parameters that carry the context (paper 3's E4 figure: u against attention's W)
  return {{"W_in", {Win_}}, {ind_ ? "u" : "W_hh", {rec_}}, {"c", {c_}}, {"memory", {rec_}}};
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
  const size_t n = size_t(B) * Tn * m;
  if (z_.size() < n) { z_.resize(n); h_.resize(n); dz_.resize(n); }
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
bool Rnn<T>::blocked_ok() const {
  return std::is_same_v<T, float> && ind_ && !erf_ && blocked::padded_dim(d_) > 0;
}

// Units on the blocked path: m rounded up to a multiple of 16, the extra units with W_in, u and
// c all 0 (their state stays 0, they add nothing to f, and their gradients are dropped).
template <class T>
int Rnn<T>::units_padded() const {
  return blocked_ok() ? (m_ + blocked::kLanes - 1) / blocked::kLanes * blocked::kLanes : m_;
}

// W_in transposed [e, mp] (e = the padded dimension on the blocked path, else d; mp =
// units_padded()), zero beyond d and m; u and c padded to mp. Kept: a step allocates nothing.
template <class T>
void Rnn<T>::transpose_input_weights() {
  const int m = m_, d = d_, e = blocked_ok() ? blocked::padded_dim(d) : d, mp = units_padded();
  const T* W = arena.p(Win_);
  wt_.assign(size_t(e) * mp, T(0));
  for (int i = 0; i < m; ++i)
    for (int k = 0; k < d; ++k) wt_[size_t(k) * mp + i] = W[size_t(i) * d + k];
  if (ind_) {
    upad_.assign(size_t(mp), T(0));
    cpad_.assign(size_t(mp), T(0));
    std::copy_n(arena.p(rec_), m, upad_.begin());
    std::copy_n(arena.p(c_), m, cpad_.begin());
  }
}

template <class T>
bool Rnn<T>::shared_ok() const {
  return blocked_ok() && blocked::shared_private_ok(shared_, d_);
}

// Per block of 16 units: [W_p (P); per t: zeta_t = W_e e_t] from the shared channels of sequence 0.
template <class T>
void Rnn<T>::build_shared_tables(const T* x, int Tn) {
  const int m = m_, d = d_, P = shared_, tn = blocked::shared_rnn_table_size(P, Tn);
  const T* W = arena.p(Win_);
  tabs_.assign(size_t(units_padded() / blocked::kLanes) * tn, v16{});
  for (int i = 0; i < m; ++i) {
    v16* tab = tabs_.data() + size_t(i / blocked::kLanes) * tn;
    const int l = i % blocked::kLanes;
    const T* Wi = W + size_t(i) * d;
    for (int k = 0; k < P; ++k) tab[k][l] = float(Wi[k]);
    for (int t = 0; t < Tn; ++t) {
      double z = 0;
      for (int k = P; k < d; ++k) z += double(Wi[k]) * x[size_t(t) * d + k];
      tab[P + t][l] = float(z);
    }
  }
}

// Adds partial sums [m/16][dW_p (P); du; dc; Z_t per t] to the gradients: dW_e = sum_t Z_t e_t.
template <class T>
void Rnn<T>::add_shared_grads(const void* accp, const T* x, int Tn) {
  const blocked::v16* accs = static_cast<const blocked::v16*>(accp);
  const int m = m_, d = d_, P = shared_, an = blocked::shared_rnn_acc_size(P, Tn);
  T* gW = arena.g(Win_); T* gu = arena.g(rec_); T* gc = arena.g(c_);
  for (int i = 0; i < m; ++i) {
    const blocked::v16* acc = accs + size_t(i / blocked::kLanes) * an;
    const int l = i % blocked::kLanes;
    for (int k = 0; k < d; ++k) {
      double g = 0;
      if (k < P) g = acc[k][l];
      else
        for (int t = 0; t < Tn; ++t) g += double(acc[P + 2 + t][l]) * x[size_t(t) * d + k];
      gW[size_t(i) * d + k] += T(g);
    }
    gu[i] += acc[P][l];
    gc[i] += acc[P + 1][l];
  }
}

template <class T>
const T* Rnn<T>::forward_ind() {
  const int B = B_, Tn = T_, m = m_, d = d_;
  transpose_input_weights();
  const bool padded = blocked_ok();  // the blocked paths read the padded u, c; m_p units
  const T* u = padded ? upad_.data() : arena.p(rec_);
  const T* c = padded ? cpad_.data() : arena.p(c_);
  const int mp = units_padded();
  const std::vector<T>& Wt = wt_;
  const T kf = T(1.0 / std::sqrt(double(m)));
  if constexpr (std::is_same_v<T, float>) {
    constexpr int S = kChains;
    if (shared_ok() && B > 0) {  // h_T only, with the shared channels' terms once per batch
      build_shared_tables(x_, Tn);
      const int tn = blocked::shared_rnn_table_size(shared_, Tn);
      blocked::dispatch_private(shared_, [&]<int P>() {
        blocked::rnn_outputs<S>(
            B, mp, c, kf, out_.data(),
            [&](int g, const float** X) {
              for (int s = 0; s < S; ++s) X[s] = x_ + size_t(std::min(g * S + s, B - 1)) * Tn * d;
            },
            [&](const float* const* X, int h0, blocked::v16* hT) {
              blocked::shared_rnn_forward<P, S>(X, Tn, d, tabs_.data() + size_t(h0 / blocked::kLanes) * tn,
                                                blocked::load(u + h0), nullptr, hT);
            });
      });
      return out_.data();
    }
    if (blocked_ok()) {  // h_T only: backward recomputes the states
      blocked::dispatch_dim(blocked::padded_dim(d), [&]<int D>() {
        blocked::rnn_outputs<S>(
            B, mp, c, kf, out_.data(),
            [&](int g, const float** X) {
              thread_local std::vector<float> pad;
              pad.resize(size_t(S) * Tn * D);
              for (int s = 0; s < S; ++s)
                X[s] = blocked::pad_tokens(x_ + size_t(std::min(g * S + s, B - 1)) * Tn * d, Tn, d, D,
                                           pad.data() + size_t(s) * Tn * D);
            },
            [&](const float* const* X, int h0, blocked::v16* hT) {
              blocked::rnn_forward<D, S>(X, Tn, Wt.data(), u, mp, h0, nullptr, hT);
            });
      });
      return out_.data();
    }
  }
  const size_t n = size_t(B) * Tn * m;
  if (z_.size() < n) { z_.resize(n); h_.resize(n); }
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
  if constexpr (std::is_same_v<T, float>) {
    if (blocked_ok()) {
      // Work items: (block of 16 units) x (chunk of sequences), each recomputing its states and
      // keeping its own partial sums, added in a fixed order.
      const int mp = units_padded(), nb = mp / blocked::kLanes, e = blocked::padded_dim(d), accn = e + 2;
      const float* up = upad_.data();
      const float* cp = cpad_.data();
      const int nchunks = std::max(1, (2 * nthreads + nb - 1) / nb);
      bacc_.assign(size_t(nb) * nchunks * accn, blocked::v16{});
      blocked::dispatch_dim(e, [&]<int D>() {
#pragma omp parallel
        {
          constexpr int S = kChains;
          thread_local std::vector<float> pad;
          thread_local std::vector<blocked::v16> H;
          pad.resize(size_t(S) * Tn * D);
          H.resize(size_t(S) * Tn);
#pragma omp for schedule(dynamic, 1)
          for (int w = 0; w < nb * nchunks; ++w) {
            const int blk = w / nchunks, chunk = w % nchunks;
            const int b0 = int(int64_t(B) * chunk / nchunks), b1 = int(int64_t(B) * (chunk + 1) / nchunks);
            blocked::v16* acc = bacc_.data() + size_t(w) * accn;
            for (int b = b0; b < b1; b += S) {
              const float* X[S];
              blocked::v16* Hs[S];
              blocked::v16 hT[S];
              for (int s = 0; s < S; ++s) {
                X[s] = blocked::pad_tokens(x_ + size_t(std::min(b + s, b1 - 1)) * Tn * d, Tn, d, D, pad.data() + size_t(s) * Tn * D);
                Hs[s] = H.data() + size_t(s) * Tn;
              }
              blocked::rnn_forward<D, S>(X, Tn, wt_.data(), up, mp, blk * blocked::kLanes, Hs, hT);
              for (int s = 0; s < S && b + s < b1; ++s)
                blocked::rnn_backward_from<D>(X[s], Tn, up, cp, blk * blocked::kLanes, Hs[s], dy[b + s] * kf, acc);
            }
          }
        }
      });
      for (int chunk = 0; chunk < nchunks; ++chunk)
        for (int blk = 0; blk < nb; ++blk) add_blocked_grads(bacc_.data() + (size_t(blk) * nchunks + chunk) * accn, blk);
      return;
    }
  }
  if (dz_.size() < size_t(B) * Tn * m) dz_.resize(size_t(B) * Tn * m);
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

// Adds one block's partial sums [dW_in (e vectors); du; dc] (padding dropped) to the gradients.
template <class T>
void Rnn<T>::add_blocked_grads(const void* accp, int blk) {
  const blocked::v16* a = static_cast<const blocked::v16*>(accp);
  const int d = d_, e = blocked::padded_dim(d_);
  T* gW = arena.g(Win_); T* gu = arena.g(rec_); T* gc = arena.g(c_);
  for (int l = 0; l < blocked::kLanes && blk * blocked::kLanes + l < m_; ++l) {
    const int i = blk * blocked::kLanes + l;
    for (int k = 0; k < d; ++k) gW[size_t(i) * d + k] += a[k][l];
    gu[i] += a[e][l];
    gc[i] += a[e + 1][l];
  }
}

// Training step of an MSE loss in one pass per sequence (kernels/indrnn_blocked.h): threads
// over sequences, each with partial sums for every unit, added in thread order.
template <class T>
const T* Rnn<T>::forward_backward_mse(const T* x, int B, int Tn, const T* y, const T* mask, T coef) {
  if constexpr (!std::is_same_v<T, float>) {
    return nullptr;
  } else {
    if (!blocked_ok()) return nullptr;
    B_ = B; T_ = Tn; x_ = x;
    const int m = m_, d = d_, mp = units_padded(), nb = mp / blocked::kLanes, e = blocked::padded_dim(d), accn = e + 2;
    transpose_input_weights();
    const float* u = upad_.data();
    const float* c = cpad_.data();
    const float kf = float(1.0 / std::sqrt(double(m)));
    const int nthreads = omp_get_max_threads();
    if (shared_ok() && B > 0) {
      build_shared_tables(x, Tn);
      const int tn = blocked::shared_rnn_table_size(shared_, Tn), an = blocked::shared_rnn_acc_size(shared_, Tn);
      bacc_.assign(size_t(nthreads) * nb * an, blocked::v16{});
      blocked::dispatch_private(shared_, [&]<int P>() {
#pragma omp parallel
        {
          constexpr int S = kChains;
          blocked::v16* acc = bacc_.data() + size_t(omp_get_thread_num()) * nb * an;
          thread_local std::vector<blocked::v16> H;
          H.resize(size_t(nb) * S * Tn);
#pragma omp for schedule(static)
          for (int g = 0; g < (B + S - 1) / S; ++g) {
            const float* X[S];
            for (int s = 0; s < S; ++s) X[s] = x + size_t(std::min(g * S + s, B - 1)) * Tn * d;
            blocked::v16 f[S] = {}, hT[S];
            for (int blk = 0; blk < nb; ++blk) {
              blocked::v16* Hs[S];
              for (int s = 0; s < S; ++s) Hs[s] = H.data() + (size_t(blk) * S + s) * Tn;
              blocked::shared_rnn_forward<P, S>(X, Tn, d, tabs_.data() + size_t(blk) * tn,
                                                blocked::load(u + blk * blocked::kLanes), Hs, hT);
              for (int s = 0; s < S; ++s) f[s] += blocked::load(c + blk * blocked::kLanes) * hT[s];
            }
            float gs[S];
            for (int s = 0; s < S; ++s) {  // a short last group's repeats get weight 0
              const int b = std::min(g * S + s, B - 1);
              float out = 0;
              for (int l = 0; l < blocked::kLanes; ++l) out += f[s][l];
              out *= kf;
              gs[s] = g * S + s < B ? coef * mask[b] * (out - y[b]) * kf : 0.f;
              if (g * S + s < B) out_[b] = out;
            }
            for (int blk = 0; blk < nb; ++blk) {
              const blocked::v16* Hs[S];
              for (int s = 0; s < S; ++s) Hs[s] = H.data() + (size_t(blk) * S + s) * Tn;
              blocked::shared_rnn_backward<P, S>(X, Tn, d, blocked::load(u + blk * blocked::kLanes),
                                                 blocked::load(c + blk * blocked::kLanes), Hs, gs, acc + size_t(blk) * an);
            }
          }
        }
      });
      for (int t = 0; t < nthreads; ++t) add_shared_grads(bacc_.data() + size_t(t) * nb * an, x, Tn);
      return out_.data();
    }
    bacc_.assign(size_t(nthreads) * nb * accn, blocked::v16{});
    blocked::dispatch_dim(e, [&]<int D>() {
#pragma omp parallel
      {
        blocked::v16* acc = bacc_.data() + size_t(omp_get_thread_num()) * nb * accn;
        constexpr int S = kChains;
        thread_local std::vector<float> pad;
        thread_local std::vector<blocked::v16> H;
        pad.resize(size_t(S) * Tn * D);
        H.resize(size_t(nb) * S * Tn);
#pragma omp for schedule(static)
        for (int g = 0; g < (B + S - 1) / S; ++g) {
          const float* X[S];
          float ys[S], cs[S], f[S];
          for (int s = 0; s < S; ++s) {  // a short last group pads with its last sequence, at weight 0
            const int b = std::min(g * S + s, B - 1);
            X[s] = blocked::pad_tokens(x + size_t(b) * Tn * d, Tn, d, D, pad.data() + size_t(s) * Tn * D);
            ys[s] = y[b];
            cs[s] = g * S + s < B ? coef * mask[b] : 0.f;
          }
          blocked::rnn_fused_seqs<D, S>(X, Tn, wt_.data(), u, c, mp, kf, ys, cs, acc, H.data(), f);
          for (int s = 0; s < S && g * S + s < B; ++s) out_[g * S + s] = f[s];
        }
      }
    });
    for (int t = 0; t < nthreads; ++t)
      for (int blk = 0; blk < nb; ++blk) add_blocked_grads(bacc_.data() + (size_t(t) * nb + blk) * accn, blk);
    return out_.data();
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
