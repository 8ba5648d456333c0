#include "models/lstm.h"

#include <algorithm>
#include <cmath>

#include "core/rng.h"
#include "kernels/gemm.h"

namespace attnlab {

namespace {
template <class T>
inline T sigm(T z) { return T(1) / (T(1) + std::exp(-z)); }
}  // namespace

template <class T>
Lstm<T>::Lstm(const ModelConfig& cfg, int max_batch) : cfg_(cfg), m_(cfg.width), d_(cfg.d_in) {
  Win_ = arena.add("W_in", {4 * m_, d_}, true);
  Whh_ = arena.add("W_hh", {4 * m_, m_}, true);
  b_ = arena.add("b", {4 * m_}, false);
  c_ = arena.add("c", {m_}, false);
  arena.allocate();
  const size_t n = size_t(max_batch) * cfg.max_len * m_;
  G_.resize(4 * n); C_.resize(n); H_.resize(n);
  out_.resize(size_t(max_batch));
  dG_.resize(size_t(max_batch) * 4 * m_); dH_.resize(size_t(max_batch) * m_); dC_.resize(size_t(max_batch) * m_);
}

template <class T>
void Lstm<T>::init(uint64_t seed) {
  const bool sym = cfg_.init == "symmetric";
  const int m = m_, d = d_, half = sym ? m / 2 : m;
  T* W = arena.p(Win_); T* R = arena.p(Whh_); T* b = arena.p(b_); T* c = arena.p(c_);
  const double sd = 1.0 / std::sqrt(double(half));
  for (int gate = 0; gate < 4; ++gate)
    for (int i = 0; i < m; ++i) {
      const int src = i < half ? i : i - half;
      const size_t row = size_t(gate) * m + i, srow = size_t(gate) * m + src;
      for (int k = 0; k < d; ++k) W[row * d + k] = T(rng_normal(seed, stream_id("W_in"), srow * d + k));
      for (int k = 0; k < m; ++k) {
        T v = 0;
        if (!sym) v = T(sd * rng_normal(seed, stream_id("W_hh"), row * m + k));
        else if ((i < half) == (k < half)) v = T(sd * rng_normal(seed, stream_id("W_hh"), srow * half + (k % half)));
        R[row * m + k] = v;
      }
      b[row] = gate == 1 ? T(1) : T(0);
    }
  for (int i = 0; i < m; ++i) c[i] = T(symmetric_readout(seed, i, half));
}

template <class T>
ParamCounts Lstm<T>::counts() const {
  ParamCounts pc;
  pc.total = int64_t(arena.size());
  return pc;
}

template <class T>
std::vector<HeadSlice> Lstm<T>::head_slices() const {
  std::vector<HeadSlice> s;
  const size_t m = size_t(m_), d = size_t(d_);
  for (int i = 0; i < m_; ++i) {
    HeadSlice cs{0, i, {{arena.info(c_).offset + i, 1}}}, us{1, i, {}}, ws{2, i, {}};
    for (size_t gate = 0; gate < 4; ++gate) {
      us.ranges.push_back({arena.info(Whh_).offset + (gate * m + i) * m, m});
      ws.ranges.push_back({arena.info(Win_).offset + (gate * m + i) * d, d});
    }
    s.push_back(cs); s.push_back(us); s.push_back(ws);
  }
  return s;
}

template <class T>
const T* Lstm<T>::forward(const T* x, const int*, int B, int Tn) {
  B_ = B; T_ = Tn; x_ = x;
  const int m = m_, d = d_, m4 = 4 * m_;
  const T* W = arena.p(Win_); const T* R = arena.p(Whh_); const T* bias = arena.p(b_); const T* c = arena.p(c_);
  for (int t = 0; t < Tn; ++t) {
    T* G = G_.data() + size_t(t) * B * m4;
    for (int b = 0; b < B; ++b) std::copy_n(bias, m4, G + size_t(b) * m4);
    gemm(false, true, B, m4, d, T(1), x + size_t(t) * d, Tn * d, W, d, T(1), G, m4);
    if (t > 0) gemm(false, true, B, m4, m, T(1), H_.data() + size_t(t - 1) * B * m, m, R, m, T(1), G, m4);
    T* C = C_.data() + size_t(t) * B * m;
    T* H = H_.data() + size_t(t) * B * m;
    const T* Cp = t > 0 ? C_.data() + size_t(t - 1) * B * m : nullptr;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; ++b) {
      T* g = G + size_t(b) * m4;
      for (int i = 0; i < m; ++i) {
        g[i] = sigm(g[i]);
        g[m + i] = sigm(g[m + i]);
        g[2 * m + i] = std::tanh(g[2 * m + i]);
        g[3 * m + i] = sigm(g[3 * m + i]);
        const size_t j = size_t(b) * m + i;
        C[j] = (Cp ? g[m + i] * Cp[j] : T(0)) + g[i] * g[2 * m + i];
        H[j] = g[3 * m + i] * std::tanh(C[j]);
      }
    }
  }
  const T* HT = H_.data() + size_t(Tn - 1) * B * m;
  const T k = T(1.0 / std::sqrt(double(m)));
  for (int b = 0; b < B; ++b) {
    T f = 0;
    for (int i = 0; i < m; ++i) f += c[i] * HT[size_t(b) * m + i];
    out_[b] = f * k;
  }
  return out_.data();
}

// BPTT (gate activations saved): do = dH tanh(C); dC += dH o (1 - tanh^2 C); di = dC g;
// dg = dC i; df = dC C_{t-1}; dC_{t-1} = dC f; dG = [di i(1-i), df f(1-f), dg (1-g^2), do o(1-o)];
// dW_in += dG^T x_t; dW_hh += dG^T h_{t-1}; db += sum_b dG; dH_{t-1} = dG W_hh.
template <class T>
void Lstm<T>::backward(const T* dy) {
  const int B = B_, Tn = T_, m = m_, d = d_, m4 = 4 * m_;
  const T* R = arena.p(Whh_); const T* c = arena.p(c_);
  T* gW = arena.g(Win_); T* gR = arena.g(Whh_); T* gb = arena.g(b_); T* gc = arena.g(c_);
  const T k = T(1.0 / std::sqrt(double(m)));
  const T* HT = H_.data() + size_t(Tn - 1) * B * m;
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < m; ++i) {
      gc[i] += dy[b] * k * HT[size_t(b) * m + i];
      dH_[size_t(b) * m + i] = dy[b] * k * c[i];
      dC_[size_t(b) * m + i] = 0;
    }
  for (int t = Tn - 1; t >= 0; --t) {
    const T* G = G_.data() + size_t(t) * B * m4;
    const T* C = C_.data() + size_t(t) * B * m;
    const T* Cp = t > 0 ? C_.data() + size_t(t - 1) * B * m : nullptr;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; ++b) {
      const T* g = G + size_t(b) * m4;
      T* dg = dG_.data() + size_t(b) * m4;
      for (int i = 0; i < m; ++i) {
        const size_t j = size_t(b) * m + i;
        const T ig = g[i], fg = g[m + i], gg = g[2 * m + i], og = g[3 * m + i], tc = std::tanh(C[j]);
        const T dh = dH_[j];
        const T dC = dC_[j] + dh * og * (T(1) - tc * tc);
        dg[i] = dC * gg * ig * (T(1) - ig);
        dg[m + i] = (Cp ? dC * Cp[j] : T(0)) * fg * (T(1) - fg);
        dg[2 * m + i] = dC * ig * (T(1) - gg * gg);
        dg[3 * m + i] = dh * tc * og * (T(1) - og);
        dC_[j] = dC * fg;
      }
    }
    gemm(true, false, m4, d, B, T(1), dG_.data(), m4, x_ + size_t(t) * d, Tn * d, T(1), gW, d);
    for (int b = 0; b < B; ++b)
      for (int r = 0; r < m4; ++r) gb[r] += dG_[size_t(b) * m4 + r];
    if (t > 0) {
      gemm(true, false, m4, m, B, T(1), dG_.data(), m4, H_.data() + size_t(t - 1) * B * m, m, T(1), gR, m);
      gemm(false, false, B, m, m4, T(1), dG_.data(), m4, R, m, T(0), dH_.data(), m);
    }
  }
}

template class Lstm<float>;
template class Lstm<double>;

void lstm_keys(Keys& k, ModelConfig& m) { width_keys(k, m, false); }

}  // namespace attnlab
