#pragma once
// DP-free attention with weights shared by the batch (used by attention_forward/backward
// when dot_product is false and T is at most kSharedMaxT). Without the dot product the
// scores are bias[h][t - s] alone, the same for every sequence: P_h [T, T] is computed once
// per head instead of once per (sequence, head), and P_h V for the whole batch is one GEMM
// [T, T] x [T, B*dv] (the tiled kernel did B*H small products with dv = 4 columns and B
// times the exps). Memory: the packed V', O', dO', dV' of every head (4 H T B dv values) and
// kAttnTile rows of P per thread.
#include <vector>

#include "kernels/attention.h"

namespace attnlab::detail {

constexpr int kSharedMaxT = 1024;

template <class T>
void attention_forward_shared(T* o, T* lse, const T* v, const T* bias, const AttnDims& d, std::vector<T>& work);

template <class T>
void attention_backward_shared(T* dvv, T* dbias, const T* dout, const T* o, const T* lse, const T* v, const T* bias,
                               const AttnDims& d, std::vector<T>& work, GradMode mode);

}  // namespace attnlab::detail
