// The tiled attention kernels (declared in attention.h). Compiled with -ffinite-math-only
// -fno-signed-zeros (CMakeLists.txt) so that fast_exp vectorizes: libm's exp on every score
// dominated long sequences. Masked scores are -inf, which fast_exp maps to exactly 0.
#include "kernels/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "kernels/attention_shared.h"
#include "kernels/fast_math.h"
#include "kernels/gemm.h"

namespace attnlab {

namespace detail {
// dst[c * n + s] = src[s * ld + c] for c < cols, s < n: one head's keys (or values) transposed,
// so that the tile products are row-major NN GEMMs. OpenBLAS sends row-major NT products of
// this size (64x64x32) through its general path, which packs both operands and takes a global
// buffer lock per call (the 2-thread forward ran 1.1x faster than 1 thread); NN products go to
// its small-matrix kernel.
// Blocks of 16 rows, so that the writes are contiguous runs: writing row by row, each value
// of a row went to a line T floats away (4 KB at T = 1024, the same L1 set every time), and
// the transpose was 40% of the forward at T = 1024.
template <class T>
inline void transpose_head(T* dst, const T* src, int n, int cols, int ld) {
  constexpr int kB = 16;
  for (int s0 = 0; s0 < n; s0 += kB) {
    const int ns = std::min(kB, n - s0);
    for (int c = 0; c < cols; ++c) {
      T* d = dst + size_t(c) * n + s0;
      const T* sp = src + size_t(s0) * ld + c;
      for (int s = 0; s < ns; ++s) d[s] = sp[size_t(s) * ld];
    }
  }
}

// Scores of the tile (rows q0.., keys k0..) into S [nq, nk]: GEMM, bias, causal mask (-inf).
// kt: the head's keys transposed, [dk, T].
template <class T>
inline void score_tile(T* S, const T* qb, const T* kt, const T* bt, int q0, int nq, int k0, int nk, int qs,
                       const AttnDims& d) {
  if (d.dot_product) gemm(false, false, nq, nk, d.dk, T(d.scale), qb + size_t(q0) * qs, qs, kt + k0, d.T, T(0), S, nk);
  else std::fill(S, S + size_t(nq) * nk, T(0));
  for (int i = 0; i < nq; ++i) {
    const int t = q0 + i;
    T* row = S + size_t(i) * nk;
    for (int j = 0; j < nk; ++j) {
      const int s2 = k0 + j;
      if (s2 > t) row[j] = -INFINITY;
      else if (bt) row[j] += bt[t - s2];
    }
  }
  if (d.logit_cap > 0)
    for (int i = 0; i < nq; ++i)
      for (int j = 0; j < nk && k0 + j <= q0 + i; ++j) S[size_t(i) * nk + j] = cap_logit(S[size_t(i) * nk + j], d.logit_cap);
}

// dS of the capped scores -> dS of the raw ones: times 1 - (S / c)^2 (S: the capped tile, before
// the exp; G its slopes, 0 where masked).
template <class T>
inline void cap_slopes(T* G, const T* S, int q0, int nq, int k0, int nk, const AttnDims& d) {
  for (int i = 0; i < nq; ++i)
    for (int j = 0; j < nk; ++j)
      G[size_t(i) * nk + j] = k0 + j <= q0 + i ? cap_slope(S[size_t(i) * nk + j], d.logit_cap) : T(0);
}

// Without the dot product the scores are the bias table alone: capping the scores is capping
// the table, which the shared-weights path then uses as it is. The table is small ([H, T]).
template <class T>
const T* capped_table(const T* bias, const AttnDims& d, std::vector<T>& buf) {
  buf.resize(size_t(d.H) * d.T);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = cap_logit(bias[i], d.logit_cap);
  return buf.data();
}
template <class T>
std::vector<T>& cap_buffer(int which) {
  thread_local std::vector<T> buf[2];  // kept between calls: no allocation per step
  return buf[which];
}
}  // namespace detail

namespace detail {
// Work item i of the parallel loop -> (b, h). Consecutive items (the ones two threads run at
// once) are different sequences, so their rows of o and dq/dk/dv are far apart.
inline void item_bh(int i, int B, int& b, int& h) {
  b = i % B;
  h = i / B;
}
// dst[n, 0..cols) (+)= src[n, 0..cols) for n < rows: a thread's tile written back once.
template <class T>
inline void write_rows(T* dst, int ld, const T* src, int rows, int cols, GradMode mode) {
  for (int n = 0; n < rows; ++n) {
    T* d = dst + size_t(n) * ld;
    const T* s = src + size_t(n) * cols;
    if (mode == GradMode::add)
      for (int c = 0; c < cols; ++c) d[c] += s[c];
    else
      for (int c = 0; c < cols; ++c) d[c] = s[c];  // a loop, not a memmove call per short row
  }
}
}  // namespace detail

// bias: [H, T] table (or nullptr for none). lse: [B, H, T] saved row log-sum-exps.
// work: scratch kept by the caller (no allocation per step once it is large enough).
// Each thread accumulates a query tile's output in its own buffer and writes it to o once:
// accumulating in o itself, where two threads' heads share cache lines, made the 2-thread
// forward barely faster than 1 thread (false sharing).
template <class T>
void attention_forward(T* o, T* lse, const T* q, const T* k, const T* v, const T* bias, const AttnDims& d,
                       std::vector<T>& work) {
  if (!d.dot_product && d.logit_cap > 0 && bias) {
    AttnDims d2 = d;
    d2.logit_cap = 0;
    attention_forward(o, lse, q, k, v, detail::capped_table(bias, d, detail::cap_buffer<T>(0)), d2, work);
    return;
  }
  if (!d.dot_product && d.T <= detail::kSharedMaxT) {  // the weights are the batch's: compute them once
    detail::attention_forward_shared(o, lse, v, bias, d, work);
    return;
  }
  const int Tn = d.T, H = d.H, dv = d.dv, BT = kAttnTile;
  const int qs = d.q_stride(), vin = d.v_stride(), vs = d.o_stride();  // vs: stride of o
  const size_t per = size_t(BT) * BT + 2 * size_t(BT) + size_t(d.dk) * Tn + size_t(BT) * dv + 16;
  if (work.size() < per * size_t(omp_get_max_threads())) work.resize(per * size_t(omp_get_max_threads()));
#pragma omp parallel
  {
    T* S = work.data() + per * size_t(omp_get_thread_num());
    T* m = S + size_t(BT) * BT;
    T* l = m + BT;
    T* kt = l + BT;                    // the head's keys, transposed [dk, T]
    T* oacc = kt + size_t(d.dk) * Tn;  // [BT, dv]
#pragma omp for schedule(dynamic, 1)
    for (int bh = 0; bh < d.B * H; ++bh) {
      int b, h;
      detail::item_bh(bh, d.B, b, h);
      const T* qb = q ? q + size_t(b) * Tn * qs + size_t(h) * d.dk : nullptr;
      const T* kb = k ? k + size_t(b) * Tn * qs + size_t(h) * d.dk : nullptr;
      const T* vb = v + size_t(b) * Tn * vin + size_t(h) * dv;
      T* ob = o + size_t(b) * Tn * vs + size_t(h) * dv;
      T* lb = lse + (size_t(b) * H + h) * Tn;
      const T* bt = bias ? bias + size_t(h) * Tn : nullptr;
      if (kb) detail::transpose_head(kt, kb, Tn, d.dk, qs);
      for (int q0 = 0; q0 < Tn; q0 += BT) {
        const int nq = std::min(BT, Tn - q0);
        std::fill_n(m, nq, T(-INFINITY));
        std::fill_n(l, nq, T(0));
        std::fill_n(oacc, size_t(nq) * dv, T(0));
        for (int k0 = 0; k0 < q0 + nq; k0 += BT) {
          const int nk = std::min(BT, Tn - k0);
          detail::score_tile(S, qb, kt, bt, q0, nq, k0, nk, qs, d);
          for (int i = 0; i < nq; ++i) {
            T* row = S + size_t(i) * nk;
            T mx = m[i];
            for (int j = 0; j < nk; ++j) mx = std::max(mx, row[j]);
            const T alpha = fast_exp(m[i] - mx);  // 0 on the first tile (m = -inf)
            T sum = 0;
#pragma omp simd reduction(+ : sum)
            for (int j = 0; j < nk; ++j) {
              row[j] = fast_exp(row[j] - mx);
              sum += row[j];
            }
            l[i] = l[i] * alpha + sum;
            m[i] = mx;
            T* orow = oacc + size_t(i) * dv;
            for (int c = 0; c < dv; ++c) orow[c] *= alpha;
          }
          gemm(false, false, nq, dv, nk, T(1), S, nk, vb + size_t(k0) * vin, vin, T(1), oacc, dv);
        }
        for (int i = 0; i < nq; ++i) {
          T* orow = ob + size_t(q0 + i) * vs;
          const T* arow = oacc + size_t(i) * dv;
          const T inv = T(1) / l[i];
          for (int c = 0; c < dv; ++c) orow[c] = arow[c] * inv;
          lb[q0 + i] = m[i] + std::log(l[i]);
        }
      }
    }
  }
}

// dq, dk, dv (+)= ...; dbias [H, T] += gradient of the bias table (may be nullptr); bias is the
// forward's table (or nullptr), o the forward's output. Per tile: P = exp(S - lse); dP = dO V^T; dV += P^T dO;
// dS = P (.) (dP - D), D_t = <dO_t, o_t>; dQ += s dS K; dK += s dS^T Q; dbias[t - s'] += dS.
// A thread accumulates the head's dq (per query tile), dk and dv (whole length) in its own
// buffers and writes each row once (see attention_forward on false sharing).
template <class T>
void attention_backward(T* dq, T* dkk, T* dvv, T* dbias, const T* dout, const T* o, const T* lse, const T* q, const T* k,
                        const T* v, const T* bias, const AttnDims& d, std::vector<T>& work, GradMode mode) {
  if (!d.dot_product && d.logit_cap > 0 && bias) {  // the table capped (see capped_table), its gradient chained
    AttnDims d2 = d;
    d2.logit_cap = 0;
    const T* cb = detail::capped_table(bias, d, detail::cap_buffer<T>(0));
    std::vector<T>& g = detail::cap_buffer<T>(1);
    if (dbias) g.assign(size_t(d.H) * d.T, T(0));
    attention_backward(dq, dkk, dvv, dbias ? g.data() : nullptr, dout, o, lse, q, k, v, cb, d2, work, mode);
    if (dbias)
      for (size_t i = 0; i < g.size(); ++i) dbias[i] += g[i] * cap_slope(cb[i], d.logit_cap);
    return;
  }
  if (!d.dot_product && d.T <= detail::kSharedMaxT) {
    detail::attention_backward_shared(dvv, dbias, dout, o, lse, v, bias, d, work, mode);
    return;
  }
  const int Tn = d.T, H = d.H, dv = d.dv, dk = d.dk, BT = kAttnTile;
  const int qs = d.q_stride(), vin = d.v_stride(), vs = d.o_stride();  // vs: stride of o and dout
  const bool cap = d.logit_cap > 0;
  const size_t nb = size_t(d.B) * H * Tn;
  const size_t per = 3 * size_t(BT) * BT + size_t(Tn) * (1 + 2 * (dk + dv)) + size_t(BT) * dk + 16;
  work.resize(nb + per * size_t(omp_get_max_threads()));
  if (dbias) std::fill(work.begin(), work.begin() + std::ptrdiff_t(nb), T(0));
#pragma omp parallel
  {
    T* S = work.data() + nb + per * size_t(omp_get_thread_num());
    T* dP = S + size_t(BT) * BT;
    T* D = dP + size_t(BT) * BT;
    T* kt = D + Tn;                  // the head's keys, transposed [dk, T]
    T* vt = kt + size_t(dk) * Tn;    // and values [dv, T]
    T* dka = vt + size_t(dv) * Tn;   // dk of the head [T, dk]
    T* dva = dka + size_t(dk) * Tn;  // dv of the head [T, dv]
    T* dqa = dva + size_t(dv) * Tn;  // dq of the query tile [BT, dk]
    T* G = dqa + size_t(BT) * dk;    // logit_cap: the tile's slopes 1 - tanh^2
#pragma omp for schedule(dynamic, 1)
    for (int bh = 0; bh < d.B * H; ++bh) {
      int b, h;
      detail::item_bh(bh, d.B, b, h);
      const size_t qo = size_t(b) * Tn * qs + size_t(h) * dk;
      const size_t vo = size_t(b) * Tn * vs + size_t(h) * dv;     // o, dout
      const size_t vio = size_t(b) * Tn * vin + size_t(h) * dv;   // v, dv
      const T* qb = q ? q + qo : nullptr;
      const T* kb = k ? k + qo : nullptr;
      const T* bt = bias ? bias + size_t(h) * Tn : nullptr;
      const T* L = lse + (size_t(b) * H + h) * Tn;
      T* wb = dbias ? work.data() + (size_t(b) * H + h) * Tn : nullptr;
      if (kb) detail::transpose_head(kt, kb, Tn, dk, qs);
      detail::transpose_head(vt, v + vio, Tn, dv, vin);
      std::fill_n(dka, size_t(dk + dv) * Tn, T(0));
      for (int t = 0; t < Tn; ++t) {
        const T* go = dout + vo + size_t(t) * vs;
        const T* ot = o + vo + size_t(t) * vs;
        T s = 0;
        for (int c = 0; c < dv; ++c) s += go[c] * ot[c];
        D[t] = s;
      }
      for (int q0 = 0; q0 < Tn; q0 += BT) {
        const int nq = std::min(BT, Tn - q0);
        if (d.dot_product) std::fill_n(dqa, size_t(nq) * dk, T(0));
        for (int k0 = 0; k0 < q0 + nq; k0 += BT) {
          const int nk = std::min(BT, Tn - k0);
          detail::score_tile(S, qb, kt, bt, q0, nq, k0, nk, qs, d);
          if (cap) detail::cap_slopes(G, S, q0, nq, k0, nk, d);
          for (int i = 0; i < nq; ++i) {
            T* row = S + size_t(i) * nk;
            const T li = L[q0 + i];
#pragma omp simd
            for (int j = 0; j < nk; ++j) row[j] = fast_exp(row[j] - li);
          }
          gemm(false, false, nq, nk, dv, T(1), dout + vo + size_t(q0) * vs, vs, vt + k0, Tn, T(0), dP, nk);
          gemm(true, false, nk, dv, nq, T(1), S, nk, dout + vo + size_t(q0) * vs, vs, T(1), dva + size_t(k0) * dv, dv);
          for (int i = 0; i < nq; ++i)
            for (int j = 0; j < nk; ++j) {
              T& g = dP[size_t(i) * nk + j];
              g = S[size_t(i) * nk + j] * (g - D[q0 + i]);
              if (cap) g *= G[size_t(i) * nk + j];
              if (wb && k0 + j <= q0 + i) wb[q0 + i - k0 - j] += g;
            }
          if (d.dot_product) {
            gemm(false, false, nq, dk, nk, T(d.scale), dP, nk, kb + size_t(k0) * qs, qs, T(1), dqa, dk);
            gemm(true, false, nk, dk, nq, T(d.scale), dP, nk, qb + size_t(q0) * qs, qs, T(1), dka + size_t(k0) * dk, dk);
          }
        }
        if (d.dot_product) detail::write_rows(dq + qo + size_t(q0) * qs, qs, dqa, nq, dk, mode);
      }
      if (d.dot_product) detail::write_rows(dkk + qo, qs, dka, Tn, dk, mode);
      detail::write_rows(dvv + vio, vin, dva, Tn, dv, mode);
    }
  }
  if (dbias)
    for (int b = 0; b < d.B; ++b)
      for (int h = 0; h < H; ++h)
        for (int n = 0; n < Tn; ++n) dbias[h * Tn + n] += work[(size_t(b) * H + h) * Tn + n];
}

template void attention_forward<float>(float*, float*, const float*, const float*, const float*, const float*,
                                       const AttnDims&, std::vector<float>&);
template void attention_forward<double>(double*, double*, const double*, const double*, const double*, const double*,
                                        const AttnDims&, std::vector<double>&);
template void attention_backward<float>(float*, float*, float*, float*, const float*, const float*, const float*,
                                        const float*, const float*, const float*, const float*, const AttnDims&,
                                        std::vector<float>&, GradMode);
template void attention_backward<double>(double*, double*, double*, double*, const double*, const double*,
                                         const double*, const double*, const double*, const double*, const double*,
                                         const AttnDims&, std::vector<double>&, GradMode);

}  // namespace attnlab
