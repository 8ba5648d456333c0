#pragma once
// Losses over [N = B*T] positions with a 0/1 mask: masked MSE and masked cross-entropy.
// Each forward returns the mean loss and writes dlogits (the gradient of that mean).
#include <cmath>
#include <vector>

namespace attnlab {

// loss = sum_{n: mask} sum_j (yhat - y)^2 / (count * D)
template <class T>
double mse_forward_backward(T* dyhat, const T* yhat, const T* y, const T* mask, int N, int D) {
  double count = 0;
  for (int n = 0; n < N; ++n) count += mask[n];
  if (count == 0) count = 1;
  const double denom = count * D;
  double loss = 0;
  for (int n = 0; n < N; ++n) {
    for (int j = 0; j < D; ++j) {
      const size_t i = size_t(n) * D + j;
      const double diff = double(yhat[i]) - y[i];
      loss += mask[n] * diff * diff;
      if (dyhat) dyhat[i] = T(2.0 * mask[n] * diff / denom);
    }
  }
  return loss / denom;
}

// log sum_v exp(l_v), stable
template <class T>
double log_sum_exp(const T* l, int V) {
  double mx = l[0];
  for (int v = 1; v < V; ++v) mx = std::fmax(mx, double(l[v]));
  double s = 0;
  for (int v = 0; v < V; ++v) s += std::exp(double(l[v]) - mx);
  return mx + std::log(s);
}

// The loss of one position, as the means above count it: the mean over j of (yhat_j - y_j)^2
// (y != nullptr), or -log softmax(yhat)[target].
template <class T>
double position_loss(const T* yhat, const T* y, int target, int D) {
  if (!y) return log_sum_exp(yhat, D) - yhat[target];
  double s = 0;
  for (int j = 0; j < D; ++j) s += (double(yhat[j]) - y[j]) * (double(yhat[j]) - y[j]);
  return s / D;
}

// loss = mean_{n: mask} -log softmax(logits_n)[target_n]
template <class T>
double ce_forward_backward(T* dlogits, const T* logits, const int* target, const T* mask, int N,
                           int V) {
  double count = 0;
  for (int n = 0; n < N; ++n) count += mask[n];
  if (count == 0) count = 1;
  double loss = 0;
  for (int n = 0; n < N; ++n) {
    const T* l = logits + size_t(n) * V;
    const double lse = log_sum_exp(l, V);
    loss += mask[n] * (lse - l[target[n]]);
    if (dlogits) {
      for (int v = 0; v < V; ++v) {
        const double p = std::exp(double(l[v]) - lse);
        dlogits[size_t(n) * V + v] = T(mask[n] * (p - (v == target[n] ? 1.0 : 0.0)) / count);
      }
    }
  }
  return loss / count;
}

}  // namespace attnlab
