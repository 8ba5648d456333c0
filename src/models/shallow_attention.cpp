#include "models/shallow_attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "core/rng.h"
#include "kernels/fast_math.h"
#include "kernels/gemm.h"
#include "kernels/shallow_blocked.h"
#include "kernels/shared_channels.h"

namespace attnlab {

namespace {
template <class T>
inline T sigma(bool erf, T z) { return erf ? T(std::erf(double(z) * 0.70710678118654752)) : fast_tanh(z); }
// sigma'(z) from z and s = sigma(z)
template <class T>
inline T dsigma(bool erf, T z, T s) {
  return erf ? T(0.79788456080286536 * std::exp(-0.5 * double(z) * z)) : T(1) - s * s;  // sqrt(2/pi) e^{-z^2/2}
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
  (void)L;
  const size_t mp = size_t(heads_padded());
  z_.resize(B * mp); h_.resize(B * mp); out_.resize(B);
  Wt_.resize(d * d * mp); Ut_.resize(d * mp);
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
    c[i] = T(symmetric_readout(seed, i, half));
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

// Hand-fused rather than BLAS: per sequence the matrices are tiny (T x d = 16 x 8) and the
// work is m independent heads, so every loop below runs with the head index i innermost and
// contiguous (layouts [.., m]) and vectorizes across heads; weights are transposed once per
// call (Wt[k][j][i] = W_i[k][j], Ut[k][i] = U_i[k]). Nothing of size T is stored: backward
// recomputes the attention of one sequence in thread-local buffers (memory traffic, not
// arithmetic, bounded the version that stored p and a: 21 ms vs ~7 ms forward at E1 size).
//   q[k][i] = sum_j W_i[k][j] x_T[j];  p[t][i] = softmax_t(s * <x_t, q_i>);  a[k][i] = sum_t p[t][i] x_t[k]
//   z_i = <U_i, a_i>;  h_i = sigma(z_i);  f = (1/sqrt m) sum_i c_i h_i
template <class T>
void ShallowAttention<T>::attend(const T* X, int Tn, T* q, T* P, T* A, T* z, T* mx, T* sum) const {
  const int m = m_, d = d_;
  const T* xT = X + size_t(Tn - 1) * d;
  const T sc = T(scale_);
  for (int k = 0; k < d; ++k) {
    T* qk = q + size_t(k) * m;
    for (int i = 0; i < m; ++i) qk[i] = 0;
    for (int j = 0; j < d; ++j) {
      const T xj = xT[j];
      const T* w = Wt_.data() + (size_t(k) * d + j) * m;
#pragma omp simd
      for (int i = 0; i < m; ++i) qk[i] += w[i] * xj;
    }
  }
  for (int i = 0; i < m; ++i) { mx[i] = -INFINITY; sum[i] = 0; }
  for (int t = 0; t < Tn; ++t) {
    T* pt = P + size_t(t) * m;
    for (int i = 0; i < m; ++i) pt[i] = 0;
    for (int k = 0; k < d; ++k) {
      const T xk = X[size_t(t) * d + k];
      const T* qk = q + size_t(k) * m;
#pragma omp simd
      for (int i = 0; i < m; ++i) pt[i] += qk[i] * xk;
    }
#pragma omp simd
    for (int i = 0; i < m; ++i) { pt[i] *= sc; mx[i] = pt[i] > mx[i] ? pt[i] : mx[i]; }
  }
  for (int t = 0; t < Tn; ++t) {
    T* pt = P + size_t(t) * m;
#pragma omp simd
    for (int i = 0; i < m; ++i) { pt[i] = fast_exp(pt[i] - mx[i]); sum[i] += pt[i]; }
  }
  for (int i = 0; i < m; ++i) sum[i] = T(1) / sum[i];
  for (size_t j = 0; j < size_t(d) * m; ++j) A[j] = 0;
  for (int t = 0; t < Tn; ++t) {
    T* pt = P + size_t(t) * m;
#pragma omp simd
    for (int i = 0; i < m; ++i) pt[i] *= sum[i];
    for (int k = 0; k < d; ++k) {
      const T xk = X[size_t(t) * d + k];
      T* ak = A + size_t(k) * m;
#pragma omp simd
      for (int i = 0; i < m; ++i) ak[i] += pt[i] * xk;
    }
  }
  for (int i = 0; i < m; ++i) z[i] = 0;
  for (int k = 0; k < d; ++k) {
    const T* ak = A + size_t(k) * m;
    const T* uk = Ut_.data() + size_t(k) * m;
#pragma omp simd
    for (int i = 0; i < m; ++i) z[i] += uk[i] * ak[i];
  }
}

// The register-blocked float kernels (kernels/shallow_blocked.h) need 16 | m and d <= 32 (d
// is padded to the next compiled dimension) and any m (padded to a multiple of 16 with heads
// whose W, U and c are 0: they add nothing to f, and their gradients are dropped).
template <class T>
bool ShallowAttention<T>::blocked_ok() const {
  return std::is_same_v<T, float> && blocked::padded_dim(d_) > 0;
}

template <class T>
int ShallowAttention<T>::heads_padded() const {
  return blocked_ok() || shared_ok() ? (m_ + blocked::kLanes - 1) / blocked::kLanes * blocked::kLanes : m_;
}

// Wt [e, e, mp] and Ut [e, mp], heads innermost, zero beyond d and m (e = the padded dimension
// on the blocked path, else d; mp = heads_padded()), and c padded to mp.
template <class T>
void ShallowAttention<T>::transpose_weights() {
  const int m = m_, d = d_, e = blocked_ok() ? blocked::padded_dim(d_) : d_, mp = heads_padded();
  const T* W = arena.p(W_); const T* U = arena.p(U_); const T* c = arena.p(c_);
  Wt_.assign(size_t(e) * e * mp, T(0));
  Ut_.assign(size_t(e) * mp, T(0));
  cpad_.assign(size_t(mp), T(0));
  for (int i = 0; i < m; ++i) {
    cpad_[size_t(i)] = c[i];
    for (int k = 0; k < d; ++k) {
      Ut_[size_t(k) * mp + i] = U[size_t(i) * d + k];
      for (int j = 0; j < d; ++j) Wt_[(size_t(k) * e + j) * mp + i] = W[(size_t(i) * d + k) * d + j];
    }
  }
}

// Adds the blocked partial sums acc [m/16][Dp*Dp + Dp + 1] (padding dropped) to the gradients.
template <class T>
void ShallowAttention<T>::add_blocked_grads(const void* accp) {
  const blocked::v16* acc = static_cast<const blocked::v16*>(accp);
  const int m = m_, d = d_, e = blocked::padded_dim(d_), accn = e * e + e + 1;
  T* gW = arena.g(W_); T* gU = arena.g(U_); T* gc = arena.g(c_);
  for (int blk = 0; blk < heads_padded() / blocked::kLanes; ++blk) {
    const blocked::v16* a = acc + size_t(blk) * accn;
    for (int l = 0; l < blocked::kLanes && blk * blocked::kLanes + l < m; ++l) {
      const int i = blk * blocked::kLanes + l;
      for (int k = 0; k < d; ++k) {
        for (int j = 0; j < d; ++j) gW[(size_t(i) * d + k) * d + j] += a[k * e + j][l];
        gU[size_t(i) * d + k] += a[e * e + k][l];
      }
      gc[i] += a[e * e + e][l];
    }
  }
}

template <class T>
bool ShallowAttention<T>::shared_ok() const {
  return blocked_ok() && blocked::shared_private_ok(shared_, d_);
}

// The per-head tables of kernels/shared_channels.h from the shared channels of sequence 0.
template <class T>
void ShallowAttention<T>::build_shared_tables(const T* x, int Tn) {
  const int m = m_, d = d_, P = shared_, tn = blocked::shared_attn_table_size(P, Tn);
  const T* W = arena.p(W_); const T* U = arena.p(U_);
  const T* eT = x + size_t(Tn - 1) * d;  // channels >= P are the shared ones
  tabs_.assign(size_t(heads_padded() / blocked::kLanes) * tn, v16{});
  for (int i = 0; i < m; ++i) {
    v16* tab = tabs_.data() + size_t(i / blocked::kLanes) * tn;
    const int l = i % blocked::kLanes;
    const T* Wi = W + size_t(i) * d * d;
    const T* Ui = U + size_t(i) * d;
    for (int k = 0; k < P; ++k) {
      for (int j = 0; j < P; ++j) tab[k * P + j][l] = float(Wi[k * d + j]);
      double qc = 0;
      for (int j = P; j < d; ++j) qc += double(Wi[k * d + j]) * eT[j];
      tab[P * P + k][l] = float(qc);
      tab[P * P + P + k][l] = float(Ui[k]);
    }
    v16* rows = tab + P * P + 2 * P;
    std::vector<double> we(static_cast<size_t>(d));  // W_ee e_T, rows k >= P
    for (int k = P; k < d; ++k) {
      double s = 0;
      for (int j = P; j < d; ++j) s += double(Wi[k * d + j]) * eT[j];
      we[size_t(k)] = s;
    }
    for (int t = 0; t < Tn; ++t) {
      const T* e = x + size_t(t) * d;
      v16* row = rows + size_t(t) * (P + 2);
      double cst = 0, mu = 0;
      for (int j = 0; j < P; ++j) {
        double h = 0;
        for (int k = P; k < d; ++k) h += double(e[k]) * Wi[k * d + j];
        row[j][l] = float(h);
      }
      for (int k = P; k < d; ++k) { cst += double(e[k]) * we[size_t(k)]; mu += double(Ui[k]) * e[k]; }
      row[P][l] = float(cst);
      row[P + 1][l] = float(mu);
    }
  }
}

// Adds one set of shared-channel partial sums [m/16][acc] to the gradients (see the layout in
// kernels/shared_channels.h): the shared channels' terms are the per-position sums times e_t.
template <class T>
void ShallowAttention<T>::add_shared_grads(const void* accp, const T* x, int Tn) {
  const blocked::v16* accs = static_cast<const blocked::v16*>(accp);
  const int m = m_, d = d_, P = shared_, an = blocked::shared_attn_acc_size(P, Tn);
  const T* eT = x + size_t(Tn - 1) * d;
  T* gW = arena.g(W_); T* gU = arena.g(U_); T* gc = arena.g(c_);
  std::vector<double> q1e(size_t(d) * P), q2e(static_cast<size_t>(d)), ae(static_cast<size_t>(d));
  for (int i = 0; i < m; ++i) {
    const blocked::v16* acc = accs + size_t(i / blocked::kLanes) * an;
    const int l = i % blocked::kLanes;
    const blocked::v16* rows = acc + P * P + 2 * P + 1;
    std::fill(q1e.begin(), q1e.end(), 0.0);
    std::fill(q2e.begin(), q2e.end(), 0.0);
    std::fill(ae.begin(), ae.end(), 0.0);
    for (int t = 0; t < Tn; ++t) {
      const T* e = x + size_t(t) * d;
      const blocked::v16* row = rows + size_t(t) * (P + 2);
      for (int k = P; k < d; ++k) {
        ae[size_t(k)] += double(row[0][l]) * e[k];
        for (int j = 0; j < P; ++j) q1e[size_t(k) * P + j] += double(row[1 + j][l]) * e[k];
        q2e[size_t(k)] += double(row[P + 1][l]) * e[k];
      }
    }
    T* Wi = gW + size_t(i) * d * d;
    for (int k = 0; k < d; ++k)
      for (int j = 0; j < d; ++j) {
        double g;
        if (k < P && j < P) g = acc[k * P + j][l];
        else if (k < P) g = double(acc[P * P + k][l]) * eT[j];
        else if (j < P) g = q1e[size_t(k) * P + j];
        else g = q2e[size_t(k)] * eT[j];
        Wi[k * d + j] += T(g);
      }
    for (int k = 0; k < d; ++k) gU[size_t(i) * d + k] += T(k < P ? double(acc[P * P + P + k][l]) : ae[size_t(k)]);
    gc[i] += acc[P * P + 2 * P][l];
  }
}

template <class T>
const T* ShallowAttention<T>::forward(const T* x, const int*, int B, int Tn) {
  B_ = B; T_ = Tn; x_ = x;
  const int m = m_, d = d_;
  const T* c = arena.p(c_);
  transpose_weights();
  const T inv_sqrt_m = T(1.0 / std::sqrt(double(m)));
  if constexpr (std::is_same_v<T, float>) {
    const int mp = heads_padded();
    const float* cp = cpad_.data();
    if (shared_ok() && B > 0) {
      build_shared_tables(x, Tn);
      const int nb = mp / blocked::kLanes, tn = blocked::shared_attn_table_size(shared_, Tn);
      double ent = 0;
      blocked::dispatch_private(shared_, [&]<int P>() {
#pragma omp parallel reduction(+ : ent)
        {
          thread_local std::vector<blocked::v16> p, v;
          p.resize(static_cast<size_t>(Tn));
          v.resize(static_cast<size_t>(Tn));
#pragma omp for schedule(static)
          for (int b = 0; b < B; ++b) {
            const float* X = x + size_t(b) * Tn * d;
            blocked::v16 f{}, ap[P];
            for (int blk = 0; blk < nb; ++blk) {
              const blocked::v16 z = blocked::shared_attend<P>(X, Tn, d, tabs_.data() + size_t(blk) * tn, float(scale_),
                                                               p.data(), v.data(), ap);
              const blocked::v16 hh = blocked::vsigma(erf_, z);
              blocked::store(z_.data() + size_t(b) * mp + blk * blocked::kLanes, z);
              blocked::store(h_.data() + size_t(b) * mp + blk * blocked::kLanes, hh);
              f += blocked::load(cp + blk * blocked::kLanes) * hh;
              if (b < kEntropySeqs)
                for (int t = 0; t < Tn; ++t)
                  for (int l = 0; l < blocked::kLanes && blk * blocked::kLanes + l < m; ++l)
                    if (p[size_t(t)][l] > 0) ent -= double(p[size_t(t)][l]) * std::log(double(p[size_t(t)][l]));
            }
            float s = 0;
            for (int l = 0; l < blocked::kLanes; ++l) s += f[l];
            out_[b] = s * inv_sqrt_m;
          }
        }
      });
      entropy_ = ent / (double(std::min(B, kEntropySeqs)) * m);
      return out_.data();
    }
    if (blocked_ok()) {
      double ent = 0;
      blocked::dispatch_dim(blocked::padded_dim(d), [&]<int D>() {
#pragma omp parallel reduction(+ : ent)
        {
          thread_local std::vector<blocked::v16> P;  // thread_local: a step allocates nothing
          thread_local std::vector<float> pad;
          P.resize(static_cast<size_t>(Tn));
          pad.resize(size_t(Tn) * D);
#pragma omp for schedule(static)
          for (int b = 0; b < B; ++b) {
            const float* X = blocked::pad_tokens(x + size_t(b) * Tn * d, Tn, d, D, pad.data());
            out_[b] = inv_sqrt_m * blocked::forward_seq<D>(X, Tn, Wt_.data(), Ut_.data(), cp, mp, float(scale_), erf_,
                                                           z_.data() + size_t(b) * mp, h_.data() + size_t(b) * mp, P.data(),
                                                           b < kEntropySeqs ? &ent : nullptr, m);
          }
        }
      });
      entropy_ = B > 0 ? ent / (double(std::min(B, kEntropySeqs)) * m) : NAN;
      return out_.data();
    }
  }
  double ent = 0;
#pragma omp parallel reduction(+ : ent)
  {
    std::vector<T> q(size_t(d) * m), P(size_t(Tn) * m), A(size_t(d) * m), mx(static_cast<size_t>(m)), sum(static_cast<size_t>(m));
#pragma omp for schedule(static)
    for (int b = 0; b < B; ++b) {
      T* z = z_.data() + size_t(b) * m;
      T* h = h_.data() + size_t(b) * m;
      attend(x + size_t(b) * Tn * d, Tn, q.data(), P.data(), A.data(), z, mx.data(), sum.data());
      if (erf_) {
        for (int i = 0; i < m; ++i) h[i] = sigma(true, z[i]);
      } else {
#pragma omp simd
        for (int i = 0; i < m; ++i) h[i] = fast_tanh(z[i]);
      }
      T f = 0;
#pragma omp simd reduction(+ : f)
      for (int i = 0; i < m; ++i) f += c[i] * h[i];
      out_[b] = f * inv_sqrt_m;
      if (b < kEntropySeqs)  // a sample: logs of every row would double the forward's cost
        for (size_t j = 0; j < P.size(); ++j)
          if (P[j] > 0) ent -= double(P[j]) * std::log(double(P[j]));
    }
  }
  entropy_ = B > 0 ? ent / (double(std::min(B, kEntropySeqs)) * m) : NAN;
  return out_.data();
}

// Backward, per sequence (g = dy_b / sqrt m), after recomputing q, p, a; vectorized over heads:
//   dc_i += g h_i;  dz_i = g c_i sigma'(z_i);  dU_i += dz_i a_i;  dp[t][i] = dz_i <U_i, x_t>;
//   ds[t][i] = s p[t][i] (dp[t][i] - sum_t' p[t'][i] dp[t'][i]);  dq[k][i] = sum_t ds[t][i] x_t[k];
//   dW_i[k][j] += dq[k][i] x_T[j].
// Per-thread partial sums are added in thread order: deterministic for a fixed thread count.
template <class T>
void ShallowAttention<T>::backward(const T* dy) {
  const int B = B_, Tn = T_, m = m_, d = d_;
  const T* c = arena.p(c_);
  const T inv_sqrt_m = T(1.0 / std::sqrt(double(m))), sc = T(scale_);
  const int nthreads = omp_get_max_threads();
  const size_t dd = size_t(d) * d;
  // per thread: dWt [d, d, m], dUt [d, m], dc [m]
  if constexpr (std::is_same_v<T, float>) {
    if (blocked_ok()) {
      // Work items: (block of 16 heads) x (chunk of sequences), each with its own partial sums
      // in L1, reduced in a fixed order afterwards.
      const int mp = heads_padded(), nblocks = mp / blocked::kLanes, e = blocked::padded_dim(d);
      const int nchunks = std::max(1, (2 * nthreads + nblocks - 1) / nblocks);
      const int accn = e * e + e + 1;
      std::vector<blocked::v16>& partial = bacc_;
      partial.assign(size_t(nblocks) * nchunks * accn, blocked::v16{});
      blocked::dispatch_dim(e, [&]<int D>() {
#pragma omp parallel
        {
          thread_local std::vector<blocked::v16> P;
          thread_local std::vector<float> pad;
          P.resize(static_cast<size_t>(Tn));
          pad.resize(size_t(Tn) * D);
#pragma omp for schedule(dynamic, 1)
          for (int w = 0; w < nblocks * nchunks; ++w) {
            const int blk = w / nchunks, chunk = w % nchunks;
            const int b0 = int(int64_t(B) * chunk / nchunks), b1 = int(int64_t(B) * (chunk + 1) / nchunks);
            blocked::v16* acc = partial.data() + size_t(w) * accn;
            for (int j = 0; j < accn; ++j) acc[j] = blocked::v16{};
            for (int b = b0; b < b1; ++b) {
              const float* X = blocked::pad_tokens(x_ + size_t(b) * Tn * d, Tn, d, D, pad.data());
              blocked::backward_block<D>(X, Tn, Wt_.data(), Ut_.data(), cpad_.data(), mp, float(scale_), erf_,
                                         h_.data() + size_t(b) * mp, dy[b] * inv_sqrt_m, blk * blocked::kLanes, acc,
                                         P.data());
            }
          }
        }
      });
      // partial is [blk][chunk][accn]; add_blocked_grads takes [blk][accn], once per chunk
      std::vector<blocked::v16>& one = fused_acc_;
      one.resize(size_t(nblocks) * accn);
      for (int chunk = 0; chunk < nchunks; ++chunk) {
        for (int blk = 0; blk < nblocks; ++blk)
          std::copy_n(partial.data() + (size_t(blk) * nchunks + chunk) * accn, accn, one.data() + size_t(blk) * accn);
        add_blocked_grads(one.data());
      }
      return;
    }
  }
  std::vector<std::vector<T>> part(size_t(nthreads), std::vector<T>((dd + d + 1) * m, T(0)));
#pragma omp parallel
  {
    std::vector<T>& acc = part[size_t(omp_get_thread_num())];
    T* dWt = acc.data();
    T* dUt = dWt + dd * m;
    T* dc = dUt + size_t(d) * m;
    std::vector<T> q(size_t(d) * m), P(size_t(Tn) * m), A(size_t(d) * m), z(static_cast<size_t>(m)),
        mx(static_cast<size_t>(m)), sum(static_cast<size_t>(m)), dz(static_cast<size_t>(m)), dp(size_t(Tn) * m),
        D(static_cast<size_t>(m)), dq(size_t(d) * m);
#pragma omp for schedule(static)
    for (int b = 0; b < B; ++b) {
      const T* X = x_ + size_t(b) * Tn * d;
      const T* xT = X + size_t(Tn - 1) * d;
      attend(X, Tn, q.data(), P.data(), A.data(), z.data(), mx.data(), sum.data());
      const T* h = h_.data() + size_t(b) * m;
      const T g = dy[b] * inv_sqrt_m;
      if (erf_) {
        for (int i = 0; i < m; ++i) dz[i] = g * c[i] * dsigma(true, z[i], h[i]);
      } else {
#pragma omp simd
        for (int i = 0; i < m; ++i) dz[i] = g * c[i] * (T(1) - h[i] * h[i]);
      }
#pragma omp simd
      for (int i = 0; i < m; ++i) dc[i] += g * h[i];
      for (int k = 0; k < d; ++k) {
        T* du = dUt + size_t(k) * m;
        const T* ak = A.data() + size_t(k) * m;
#pragma omp simd
        for (int i = 0; i < m; ++i) du[i] += dz[i] * ak[i];
      }
      for (int i = 0; i < m; ++i) D[i] = 0;
      for (int t = 0; t < Tn; ++t) {
        T* dpt = dp.data() + size_t(t) * m;
        for (int i = 0; i < m; ++i) dpt[i] = 0;
        for (int k = 0; k < d; ++k) {
          const T xk = X[size_t(t) * d + k];
          const T* uk = Ut_.data() + size_t(k) * m;
#pragma omp simd
          for (int i = 0; i < m; ++i) dpt[i] += uk[i] * xk;
        }
        const T* pt = P.data() + size_t(t) * m;
#pragma omp simd
        for (int i = 0; i < m; ++i) { dpt[i] *= dz[i]; D[i] += pt[i] * dpt[i]; }
      }
      for (size_t j = 0; j < dq.size(); ++j) dq[j] = 0;
      for (int t = 0; t < Tn; ++t) {
        const T* pt = P.data() + size_t(t) * m;
        T* dpt = dp.data() + size_t(t) * m;
#pragma omp simd
        for (int i = 0; i < m; ++i) dpt[i] = sc * pt[i] * (dpt[i] - D[i]);
        for (int k = 0; k < d; ++k) {
          const T xk = X[size_t(t) * d + k];
          T* dqk = dq.data() + size_t(k) * m;
#pragma omp simd
          for (int i = 0; i < m; ++i) dqk[i] += dpt[i] * xk;
        }
      }
      for (int k = 0; k < d; ++k)
        for (int j = 0; j < d; ++j) {
          const T xj = xT[j];
          const T* dqk = dq.data() + size_t(k) * m;
          T* dw = dWt + (size_t(k) * d + j) * m;
#pragma omp simd
          for (int i = 0; i < m; ++i) dw[i] += dqk[i] * xj;
        }
    }
  }
  T* gU = arena.g(U_); T* gc = arena.g(c_); T* gW = arena.g(W_);
  for (const auto& acc : part) {
    const T* dWt = acc.data();
    const T* dUt = dWt + dd * m;
    const T* dc = dUt + size_t(d) * m;
    for (int i = 0; i < m; ++i) {
      gc[i] += dc[i];
      for (int k = 0; k < d; ++k) {
        gU[size_t(i) * d + k] += dUt[size_t(k) * m + i];
        for (int j = 0; j < d; ++j) gW[(size_t(i) * d + k) * d + j] += dWt[(size_t(k) * d + j) * m + i];
      }
    }
  }
}

// Training step of an MSE loss in one pass per sequence (kernels/shallow_blocked.h fused_seq):
// threads over sequences, each with partial sums for every head, added in thread order.
template <class T>
const T* ShallowAttention<T>::forward_backward_mse(const T* x, int B, int Tn, const T* y, const T* mask, T coef) {
  if constexpr (!std::is_same_v<T, float>) {
    return nullptr;
  } else {
    if (!blocked_ok() && !shared_ok()) return nullptr;
    B_ = B; T_ = Tn; x_ = x;
    const int m = m_, d = d_, mp = heads_padded(), nb = mp / blocked::kLanes;
    transpose_weights();
    const float* c = cpad_.data();
    const float inv_sqrt_m = float(1.0 / std::sqrt(double(m)));
    const int nthreads = omp_get_max_threads();
    if (shared_ok() && B > 0) {
      build_shared_tables(x, Tn);
      const int tn = blocked::shared_attn_table_size(shared_, Tn), an = blocked::shared_attn_acc_size(shared_, Tn);
      fused_acc_.assign(size_t(nthreads) * nb * an, blocked::v16{});
      blocked::dispatch_private(shared_, [&]<int P>() {
#pragma omp parallel
        {
          blocked::v16* acc = fused_acc_.data() + size_t(omp_get_thread_num()) * nb * an;
          thread_local std::vector<blocked::v16> p, v, a, zh;
          p.resize(size_t(nb) * Tn);
          v.resize(size_t(nb) * Tn);
          a.resize(size_t(nb) * P);
          zh.resize(size_t(2 * nb));
#pragma omp for schedule(static)
          for (int b = 0; b < B; ++b)
            out_[b] = blocked::shared_fused_seq<P>(x + size_t(b) * Tn * d, Tn, d, tabs_.data(), c, mp, float(scale_), erf_,
                                                   inv_sqrt_m, y[b], coef * mask[b], acc, p.data(), v.data(), a.data(),
                                                   zh.data());
        }
      });
      for (int t = 0; t < nthreads; ++t) add_shared_grads(fused_acc_.data() + size_t(t) * nb * an, x, Tn);
      entropy_ = NAN;
      return out_.data();
    }
    const int e = blocked::padded_dim(d), accn = e * e + e + 1;
    fused_acc_.assign(size_t(nthreads) * nb * accn, blocked::v16{});
    blocked::dispatch_dim(e, [&]<int D>() {
#pragma omp parallel
      {
        blocked::v16* acc = fused_acc_.data() + size_t(omp_get_thread_num()) * nb * accn;
        thread_local std::vector<blocked::v16> P, A, ZH;
        thread_local std::vector<float> pad;
        P.resize(size_t(nb) * Tn);
        A.resize(size_t(nb) * D);
        ZH.resize(size_t(3 * nb));
        pad.resize(size_t(Tn) * D);
#pragma omp for schedule(static)
        for (int b = 0; b < B; ++b) {
          const float* X = blocked::pad_tokens(x + size_t(b) * Tn * d, Tn, d, D, pad.data());
          out_[b] = blocked::fused_seq<D>(X, Tn, Wt_.data(), Ut_.data(), c, mp, float(scale_), erf_, inv_sqrt_m, y[b],
                                          coef * mask[b], acc, P.data(), A.data(), ZH.data());
        }
      }
    });
    for (int t = 0; t < nthreads; ++t) add_blocked_grads(fused_acc_.data() + size_t(t) * nb * accn);
    entropy_ = NAN;
    return out_.data();
  }
}

template class ShallowAttention<float>;
template class ShallowAttention<double>;

void shallow_attention_keys(Keys& k, ModelConfig& m) {
  width_keys(k, m, true);
  k.number("score_scale", m.score_scale, 0.0);  // the scores' scale; <= 0: 1
}

}  // namespace attnlab
