// DP-free attention shared by the batch (attention_shared.h). Forward and backward:
//   P[t, s] = exp(bias[t - s] - lse_t), s <= t   (per head; made kAttnTile rows at a time)
//   O' = P V'            with V' [T, B*dv]: column b*dv + j is v[b, :, h*dv + j]
//   dV' = P^T dO',  dP = dO' V'^T,  D_t = sum_c dO'[t, c] O'[t, c]
//   dS = P (.) (dP - D),  dbias[n] += sum_{t - s = n} dS[t, s]
#include "kernels/attention_shared.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "kernels/fast_math.h"
#include "kernels/gemm.h"

namespace attnlab::detail {

namespace {

// Rows r0 .. r0 + nr of one head's P into P [nr, K] (K >= r0 + nr; zero where s > t) and their
// log-sum-exps into l [nr].
template <class T>
void softmax_rows(T* P, T* l, const T* bt, int r0, int nr, int K) {
  for (int i = 0; i < nr; ++i) {
    const int t = r0 + i;
    T* row = P + size_t(i) * K;
    T mx = bt ? bt[0] : T(0);
    if (bt)
      for (int n = 1; n <= t; ++n) mx = std::max(mx, bt[n]);
    T sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int s = 0; s <= t; ++s) {
      row[s] = bt ? fast_exp(bt[t - s] - mx) : T(1);
      sum += row[s];
    }
    const T inv = T(1) / sum;
    for (int s = 0; s <= t; ++s) row[s] *= inv;
    std::fill(row + t + 1, row + K, T(0));
    l[i] = mx + std::log(sum);
  }
}

// P[t, s] = exp(bias[t - s] - lse_t) for the rows r0 .. r0 + nr and keys s0 .. s0 + ns, into
// P [nr, ns] (zero where s > t): the backward's P, from the forward's log-sum-exps.
template <class T>
void recompute(T* P, const T* bt, const T* lse, int r0, int nr, int s0, int ns) {
  for (int i = 0; i < nr; ++i) {
    const int t = r0 + i;
    T* row = P + size_t(i) * ns;
    const T li = lse[t];
#pragma omp simd
    for (int j = 0; j < ns; ++j) {
      const int s2 = s0 + j;
      row[j] = s2 <= t ? fast_exp((bt ? bt[std::max(t - s2, 0)] : T(0)) - li) : T(0);
    }
  }
}

// X'_h [T, B*dv] <- x[b, t, h*dv + j] for every head (row stride ld), and back with a
// GradMode: one row (b, t) of x holds every head's columns, so each row is read or written once.
template <class T>
void pack_heads(T* dst, const T* src, int B, int Tn, int H, int dv, int ld) {
  const size_t head = size_t(Tn) * B * dv;
#pragma omp for
  for (int t = 0; t < Tn; ++t)
    for (int b = 0; b < B; ++b) {
      const T* s = src + (size_t(b) * Tn + t) * ld;
      for (int h = 0; h < H; ++h) {
        T* d = dst + h * head + size_t(t) * B * dv + size_t(b) * dv;
        for (int j = 0; j < dv; ++j) d[j] = s[h * dv + j];  // a loop: std::copy called memmove for every few values
      }
    }
}

template <class T>
void unpack_heads(T* dst, const T* src, int B, int Tn, int H, int dv, int ld, GradMode mode) {
  const size_t head = size_t(Tn) * B * dv;
#pragma omp for
  for (int bt = 0; bt < B * Tn; ++bt) {
    const int b = bt / Tn, t = bt % Tn;
    T* d = dst + size_t(bt) * ld;
    for (int h = 0; h < H; ++h) {
      const T* s = src + h * head + size_t(t) * B * dv + size_t(b) * dv;
      if (mode == GradMode::add)
        for (int j = 0; j < dv; ++j) d[h * dv + j] += s[j];
      else
        for (int j = 0; j < dv; ++j) d[h * dv + j] = s[j];
    }
  }
}

// Work item i of the (head, block) loops -> head and block, the longest blocks first so that
// the threads finish together. `longest_last`: a block's work grows with its index.
inline void item_hb(int i, int H, int nb, bool longest_last, int& h, int& blk) {
  h = i % H;
  blk = longest_last ? nb - 1 - i / H : i / H;
}

}  // namespace

// One parallel region; the items are (head, block of kAttnTile rows), each with its own
// single-threaded GEMM. P is lower triangular, so a row block of P V needs the keys up to its
// last row only and a key block of P^T dO' the rows from its first key on: half the work of
// full T x T products. (One region per head, with the GEMMs split across threads, spent a
// sixth of paper 2's step waiting at barriers.)
template <class T>
void attention_forward_shared(T* o, T* lse, const T* v, const T* bias, const AttnDims& d, std::vector<T>& work) {
  const int Tn = d.T, H = d.H, dv = d.dv, B = d.B, N = B * dv, R = kAttnTile, nb = (Tn + R - 1) / R;
  const size_t head = size_t(Tn) * N, rows = size_t(R) * Tn;
  const size_t need = 2 * H * head + size_t(H) * Tn + rows * size_t(omp_get_max_threads());
  if (work.size() < need) work.resize(need);
  T* Vp = work.data();
  T* Op = Vp + H * head;
  T* L = Op + H * head;  // [H, T]: the same for every sequence
#pragma omp parallel
  {
    T* P = L + size_t(H) * Tn + rows * size_t(omp_get_thread_num());
    pack_heads(Vp, v, B, Tn, H, dv, d.v_stride());
#pragma omp for schedule(dynamic, 1)
    for (int i = 0; i < H * nb; ++i) {
      int h, blk;
      item_hb(i, H, nb, true, h, blk);
      const int r0 = blk * R, nr = std::min(R, Tn - r0), K = r0 + nr;
      softmax_rows(P, L + size_t(h) * Tn + r0, bias ? bias + size_t(h) * Tn : nullptr, r0, nr, K);
      gemm(false, false, nr, N, K, T(1), P, K, Vp + h * head, N, T(0), Op + h * head + size_t(r0) * N, N);
    }
    unpack_heads(o, Op, B, Tn, H, dv, d.o_stride(), GradMode::set);
#pragma omp for
    for (int bh = 0; bh < B * H; ++bh) std::copy_n(L + size_t(bh % H) * Tn, Tn, lse + size_t(bh) * Tn);
  }
}

template <class T>
void attention_backward_shared(T* dvv, T* dbias, const T* dout, const T* o, const T* lse, const T* v, const T* bias,
                               const AttnDims& d, std::vector<T>& work, GradMode mode) {
  const int Tn = d.T, H = d.H, dv = d.dv, B = d.B, N = B * dv, R = kAttnTile, nb = (Tn + R - 1) / R;
  const int nt = omp_get_max_threads();
  const size_t head = size_t(Tn) * N, rows = size_t(R) * Tn, ht = size_t(H) * Tn;
  const size_t need = 4 * H * head + (2 * rows + ht) * size_t(nt);
  if (work.size() < need) work.resize(need);
  T* Vp = work.data();
  T* dOp = Vp + H * head;
  T* Op = dOp + H * head;
  T* dVp = Op + H * head;
  T* thread0 = dVp + H * head;
#pragma omp parallel
  {
    T* P = thread0 + (2 * rows + ht) * size_t(omp_get_thread_num());
    T* dP = P + rows;
    T* db = dP + rows;  // this thread's part of dbias [H, T]
    pack_heads(Vp, v, B, Tn, H, dv, d.v_stride());
    pack_heads(dOp, dout, B, Tn, H, dv, d.o_stride());
    if (dbias) pack_heads(Op, o, B, Tn, H, dv, d.o_stride());
    // dV'[s0..] = P[s0.., s0..]^T dO'[s0..], key block by key block.
#pragma omp for schedule(dynamic, 1)
    for (int i = 0; i < H * nb; ++i) {
      int h, blk;
      item_hb(i, H, nb, false, h, blk);
      const int s0 = blk * R, ns = std::min(R, Tn - s0);
      recompute(P, bias ? bias + size_t(h) * Tn : nullptr, lse + size_t(h) * Tn, s0, Tn - s0, s0, ns);
      gemm(true, false, ns, N, Tn - s0, T(1), P, ns, dOp + h * head + size_t(s0) * N, N, T(0),
           dVp + h * head + size_t(s0) * N, N);
    }
    unpack_heads(dvv, dVp, B, Tn, H, dv, d.v_stride(), mode);
    if (dbias) {
      // dS = P (.) (dP - D) with dP = dO' V'^T and D_t = <dO'_t, O'_t>, row block by row block;
      // dbias[n] += sum_t dS[t, t - n], summed per thread, then over threads.
      std::fill_n(db, ht, T(0));
#pragma omp for schedule(dynamic, 1)
      for (int i = 0; i < H * nb; ++i) {
        int h, blk;
        item_hb(i, H, nb, true, h, blk);
        const int r0 = blk * R, nr = std::min(R, Tn - r0), K = r0 + nr;
        const T* dOh = dOp + h * head;
        recompute(P, bias ? bias + size_t(h) * Tn : nullptr, lse + size_t(h) * Tn, r0, nr, 0, K);
        gemm(false, true, nr, K, N, T(1), dOh + size_t(r0) * N, N, Vp + h * head, N, T(0), dP, K);
        T* dbh = db + size_t(h) * Tn;
        for (int r = 0; r < nr; ++r) {
          const int t = r0 + r;
          const T* go = dOh + size_t(t) * N;
          const T* ot = Op + h * head + size_t(t) * N;
          T D = 0;
          for (int c = 0; c < N; ++c) D += go[c] * ot[c];
          const T* pr = P + size_t(r) * K;
          const T* gr = dP + size_t(r) * K;
          for (int s2 = 0; s2 <= t; ++s2) dbh[t - s2] += pr[s2] * (gr[s2] - D);
        }
      }
#pragma omp for
      for (int n = 0; n < H * Tn; ++n) {
        T sum = 0;
        for (int th = 0; th < omp_get_num_threads(); ++th) sum += thread0[(2 * rows + ht) * size_t(th) + 2 * rows + n];
        dbias[n] += sum;
      }
    }
  }
}

template void attention_forward_shared<float>(float*, float*, const float*, const float*, const AttnDims&, std::vector<float>&);
template void attention_forward_shared<double>(double*, double*, const double*, const double*, const AttnDims&,
                                               std::vector<double>&);
template void attention_backward_shared<float>(float*, float*, const float*, const float*, const float*, const float*,
                                               const float*, const AttnDims&, std::vector<float>&, GradMode);
template void attention_backward_shared<double>(double*, double*, const double*, const double*, const double*,
                                                const double*, const double*, const AttnDims&, std::vector<double>&,
                                                GradMode);

}  // namespace attnlab::detail
