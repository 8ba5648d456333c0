#include "analysis/compress.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "kernels/svd.h"
#include "models/model.h"
#include "train/evaluate.h"

namespace attnlab {

namespace {

double score_scale(const ModelConfig& m, int dk) { return m.score_scale > 0 ? m.score_scale : 1.0 / std::sqrt(double(dk)); }

// [W | b] of rows r0..r0+n of a [rows, C] weight and its bias, as an n x (C+1) double matrix.
std::vector<double> augmented(const float* w, const float* b, int r0, int n, int C) {
  std::vector<double> a(size_t(n) * (C + 1));
  for (int i = 0; i < n; ++i) {
    for (int c = 0; c < C; ++c) a[size_t(i) * (C + 1) + c] = w[size_t(r0 + i) * C + c];
    a[size_t(i) * (C + 1) + C] = b[r0 + i];
  }
  return a;
}

// ||sum_{i >= r} s_i^2||^(1/2) / ||s||: the relative Frobenius error of the rank-r truncation.
double tail_error(const std::vector<double>& s, int r) {
  double all = 0, tail = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    all += s[i] * s[i];
    if (int(i) >= r) tail += s[i] * s[i];
  }
  return all > 0 ? std::sqrt(tail / all) : 0.0;
}

std::vector<int> parse_selection(const std::vector<int>& v, int n, const std::string& what) {
  if (v.empty()) {
    std::vector<int> all(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) all[size_t(i)] = i;
    return all;
  }
  for (int i : v)
    if (i < 0 || i >= n) throw UserError(what + ": " + std::to_string(i) + " is out of range (0.." + std::to_string(n - 1) + ")");
  return v;
}

}  // namespace

CompressResult compress_checkpoint(const std::string& ckpt, const CompressOptions& o, const std::string& out) {
  const RunConfig cfg = checkpoint_config(ckpt, {});
  const ModelConfig& mc = cfg.model;
  if (mc.kind != "transformer") throw UserError(ckpt + ": model.kind is '" + mc.kind + "': only Transformer heads can be compressed");
  if (o.qk_rank < 0 || o.ov_rank < 0) throw UserError("--qk-rank/--ov-rank: ranks must be >= 1");
  if (o.qk_rank == 0 && o.ov_rank == 0) throw UserError("compress: give --qk-rank and/or --ov-rank");
  if (o.qk_rank > 0 && !mc.dot_product) throw UserError("--qk-rank: " + ckpt + " has no dot product (model.dot_product = false)");
  auto old_model = make_model<float>(mc, 1);
  load_checkpoint(ckpt, old_model->arena);
  const Arena<float>& A = old_model->arena;
  const int C = mc.d_model;
  const std::vector<int> layers = parse_selection(o.layers, mc.layers, "--layers");
  int max_heads = 0;
  for (int l : layers) max_heads = std::max(max_heads, mc.heads[size_t(l)]);
  for (int h : o.heads)
    if (h < 0 || h >= max_heads)
      throw UserError("--heads: " + std::to_string(h) + " is out of range (the selected layers have " + std::to_string(max_heads) + " heads)");

  CompressResult res;
  res.config = cfg;
  ModelConfig& nc = res.config.model;
  // The selected heads per layer; a layer whose every head is selected shrinks.
  std::vector<std::set<int>> chosen(size_t(mc.layers));
  for (int l : layers)
    for (int h : o.heads.empty() ? parse_selection({}, mc.heads[size_t(l)], "") : o.heads)
      if (h < mc.heads[size_t(l)]) chosen[size_t(l)].insert(h);
  for (int l = 0; l < mc.layers; ++l) {
    const bool whole = int(chosen[size_t(l)].size()) == mc.heads[size_t(l)];
    if (!whole) continue;
    if (o.qk_rank > 0) nc.head_dim[size_t(l)] = std::min(o.qk_rank, mc.head_dim[size_t(l)]);
    if (o.ov_rank > 0) nc.value_dim[size_t(l)] = std::min(o.ov_rank, mc.value_dim[size_t(l)]);
  }
  auto new_model = make_model<float>(nc, 1);
  Arena<float>& B = new_model->arena;
  // Every tensor whose shape is unchanged is copied; the attention projections are rebuilt.
  for (const auto& p : B.params()) {
    const int id = A.find(p.name);
    if (id < 0) throw UserError("compress: internal: no tensor '" + p.name + "' in the original model");
    if (A.info(id).shape == p.shape) std::copy_n(A.data().data() + A.info(id).offset, p.size, B.data().data() + p.offset);
  }
  auto P = [](const Arena<float>& ar, const std::string& n) { return ar.data().data() + ar.info(ar.find(n)).offset; };
  auto Pw = [](Arena<float>& ar, const std::string& n) { return ar.data().data() + ar.info(ar.find(n)).offset; };
  for (int l = 0; l < mc.layers; ++l) {
    const std::string pre = "layers." + std::to_string(l) + ".attn.";
    const int H = mc.heads[size_t(l)], dk = mc.head_dim[size_t(l)], dv = mc.value_dim[size_t(l)];
    const int dk2 = nc.head_dim[size_t(l)], dv2 = nc.value_dim[size_t(l)];
    for (int h = 0; h < H; ++h) {
      if (!chosen[size_t(l)].count(h)) continue;  // copied above, unchanged
      HeadCompression hc;
      hc.layer = l;
      hc.head = h;
      if (o.qk_rank > 0) {
        float *wq = Pw(B, pre + "q.weight"), *bq = Pw(B, pre + "q.bias"), *wk = Pw(B, pre + "k.weight"), *bk = Pw(B, pre + "k.bias");
        const auto aq = augmented(P(A, pre + "q.weight"), P(A, pre + "q.bias"), h * dk, dk, C);
        const auto ak = augmented(P(A, pre + "k.weight"), P(A, pre + "k.bias"), h * dk, dk, C);
        const int r = std::min(o.qk_rank, dk);
        // M = s A_q^T A_k, (C+1) x (C+1)
        std::vector<double> m(size_t(C + 1) * (C + 1), 0.0);
        const double s_old = score_scale(mc, dk), s_new = score_scale(nc, dk2);
        for (int c = 0; c < dk; ++c)
          for (int i = 0; i <= C; ++i) {
            const double qi = s_old * aq[size_t(c) * (C + 1) + i];
            for (int j = 0; j <= C; ++j) m[size_t(i) * (C + 1) + j] += qi * ak[size_t(c) * (C + 1) + j];
          }
        const Svd d = svd(m, C + 1, C + 1);
        hc.qk_rel_error = tail_error(d.s, r);
        for (int c = 0; c < dk2; ++c) {  // row h*dk2 + c of the new q and k
          const double g = c < r ? std::sqrt(d.s[size_t(c)] / s_new) : 0.0;
          for (int i = 0; i <= C; ++i) {
            const float qv = float(g * d.u[size_t(i) * d.k + c]), kv = float(g * d.vt[size_t(c) * (C + 1) + i]);
            if (i < C) { wq[size_t(h * dk2 + c) * C + i] = qv; wk[size_t(h * dk2 + c) * C + i] = kv; }
            else { bq[h * dk2 + c] = qv; bk[h * dk2 + c] = kv; }
          }
        }
      }
      if (o.ov_rank > 0) {  // OV: N = W_o,h [W_v,h | b_v,h], C x (C+1)
        float *wv = Pw(B, pre + "v.weight"), *bv = Pw(B, pre + "v.bias"), *wo = Pw(B, pre + "o.weight");
        const auto av = augmented(P(A, pre + "v.weight"), P(A, pre + "v.bias"), h * dv, dv, C);
        const float* wo_old = P(A, pre + "o.weight");  // [C, H dv]
        const int r = std::min(o.ov_rank, dv);
        std::vector<double> n(size_t(C) * (C + 1), 0.0);
        for (int i = 0; i < C; ++i)
          for (int c = 0; c < dv; ++c) {
            const double oi = wo_old[size_t(i) * H * dv + h * dv + c];
            for (int j = 0; j <= C; ++j) n[size_t(i) * (C + 1) + j] += oi * av[size_t(c) * (C + 1) + j];
          }
        const Svd d = svd(n, C, C + 1);
        hc.ov_rel_error = tail_error(d.s, r);
        for (int c = 0; c < dv2; ++c) {
          const double g = c < r ? std::sqrt(d.s[size_t(c)]) : 0.0;
          for (int j = 0; j <= C; ++j) {
            const float v = float(g * d.vt[size_t(c) * (C + 1) + j]);
            if (j < C) wv[size_t(h * dv2 + c) * C + j] = v;
            else bv[h * dv2 + c] = v;
          }
          for (int i = 0; i < C; ++i) wo[size_t(i) * H * dv2 + h * dv2 + c] = float(g * d.u[size_t(i) * d.k + c]);
        }
      }
      res.heads.push_back(hc);
    }
  }
  res.params_before = int64_t(A.size());
  res.params_after = int64_t(B.size());
  save_checkpoint(out, B, resolved_toml(res.config));
  return res;
}

}  // namespace attnlab
