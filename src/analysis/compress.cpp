#include "analysis/compress.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "io/config.h"
#include "kernels/posbias.h"
#include "kernels/svd.h"
#include "models/model.h"
#include "train/bench.h"
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

const float* at(const Arena<float>& ar, const std::string& n) { return ar.data().data() + ar.info(ar.find(n)).offset; }
float* at(Arena<float>& ar, const std::string& n) { return ar.data().data() + ar.info(ar.find(n)).offset; }

// Head h's QK form M = s A_q^T A_k ((C+1) x (C+1)) in layer l of the model mc with arena A.
std::vector<double> qk_form(const ModelConfig& mc, const Arena<float>& A, const std::string& pre, int l, int h) {
  const int C = mc.d_model, dk = mc.head_dim[size_t(l)][size_t(h)], r0 = q_offset(mc, l, h);
  const auto aq = augmented(at(A, pre + "q.weight"), at(A, pre + "q.bias"), r0, dk, C);
  const auto ak = augmented(at(A, pre + "k.weight"), at(A, pre + "k.bias"), r0, dk, C);
  std::vector<double> m(size_t(C + 1) * (C + 1), 0.0);
  const double s = score_scale(mc, dk);
  for (int c = 0; c < dk; ++c)
    for (int i = 0; i <= C; ++i) {
      const double qi = s * aq[size_t(c) * (C + 1) + i];
      for (int j = 0; j <= C; ++j) m[size_t(i) * (C + 1) + j] += qi * ak[size_t(c) * (C + 1) + j];
    }
  return m;
}

// Head h's OV form N = W_o,h [W_v,h | b_v,h] (C x (C+1)).
std::vector<double> ov_form(const ModelConfig& mc, const Arena<float>& A, const std::string& pre, int l, int h) {
  const int C = mc.d_model, dv = mc.value_dim[size_t(l)][size_t(h)], r0 = v_offset(mc, l, h), vd = v_width(mc, l);
  const auto av = augmented(at(A, pre + "v.weight"), at(A, pre + "v.bias"), r0, dv, C);
  const float* wo = at(A, pre + "o.weight");  // [C, sum d_v]
  std::vector<double> n(size_t(C) * (C + 1), 0.0);
  for (int i = 0; i < C; ++i)
    for (int c = 0; c < dv; ++c) {
      const double oi = wo[size_t(i) * vd + r0 + c];
      for (int j = 0; j <= C; ++j) n[size_t(i) * (C + 1) + j] += oi * av[size_t(c) * (C + 1) + j];
    }
  return n;
}

// Writes the best rank-r factorisation of the QK form m into head h of layer l of the new
// model nc (arena B, head dimension nc.head_dim[l][h], zero rows beyond r); returns the relative
// Frobenius error of the truncation.
double write_qk(const ModelConfig& mc, const ModelConfig& nc, Arena<float>& B, const std::string& pre, int l, int h,
                const std::vector<double>& m, int rank) {
  const int C = mc.d_model, dk2 = nc.head_dim[size_t(l)][size_t(h)], r0 = q_offset(nc, l, h);
  const double s_new = score_scale(nc, dk2);
  float *wq = at(B, pre + "q.weight"), *bq = at(B, pre + "q.bias"), *wk = at(B, pre + "k.weight"), *bk = at(B, pre + "k.bias");
  const Svd d = svd(m, C + 1, C + 1);
  const int r = std::min({rank, dk2, d.k});  // a head wider than the form's rank is zero-padded
  for (int c = 0; c < dk2; ++c) {  // row r0 + c of the new q and k
    const double g = c < r ? std::sqrt(d.s[size_t(c)] / s_new) : 0.0;
    for (int i = 0; i <= C; ++i) {
      const float qv = c < r ? float(g * d.u[size_t(i) * d.k + c]) : 0.f, kv = c < r ? float(g * d.vt[size_t(c) * (C + 1) + i]) : 0.f;
      if (i < C) { wq[size_t(r0 + c) * C + i] = qv; wk[size_t(r0 + c) * C + i] = kv; }
      else { bq[r0 + c] = qv; bk[r0 + c] = kv; }
    }
  }
  return tail_error(d.s, r);
}

// Same for the OV form n (value dimension nc.value_dim[l][h]; W_o's columns of every head of nc).
double write_ov(const ModelConfig& mc, const ModelConfig& nc, Arena<float>& B, const std::string& pre, int l, int h,
                const std::vector<double>& n, int rank) {
  const int C = mc.d_model, dv2 = nc.value_dim[size_t(l)][size_t(h)], r0 = v_offset(nc, l, h), vd2 = v_width(nc, l);
  float *wv = at(B, pre + "v.weight"), *bv = at(B, pre + "v.bias"), *wo = at(B, pre + "o.weight");
  const Svd d = svd(n, C, C + 1);
  const int r = std::min({rank, dv2, d.k});  // a head wider than the form's rank is zero-padded
  for (int c = 0; c < dv2; ++c) {
    const double g = c < r ? std::sqrt(d.s[size_t(c)]) : 0.0;
    for (int j = 0; j <= C; ++j) {
      const float v = c < r ? float(g * d.vt[size_t(c) * (C + 1) + j]) : 0.f;
      if (j < C) wv[size_t(r0 + c) * C + j] = v;
      else bv[r0 + c] = v;
    }
    for (int i = 0; i < C; ++i) wo[size_t(i) * vd2 + r0 + c] = c < r ? float(g * d.u[size_t(i) * d.k + c]) : 0.f;
  }
  return tail_error(d.s, r);
}

// Head h's q and k rows (qk) or v rows and o columns (ov), unchanged, from the model mc (arena A)
// to its place in nc (arena B), where the heads before it may have shrunk.
void copy_head(const ModelConfig& mc, const ModelConfig& nc, const Arena<float>& A, Arena<float>& B, const std::string& pre,
               int l, int h, bool qk) {
  const int C = mc.d_model;
  if (qk) {
    const int dk = mc.head_dim[size_t(l)][size_t(h)], r0 = q_offset(mc, l, h), r1 = q_offset(nc, l, h);
    for (const char* w : {"q", "k"}) {
      std::copy_n(at(A, pre + w + ".weight") + size_t(r0) * C, size_t(dk) * C, at(B, pre + w + ".weight") + size_t(r1) * C);
      std::copy_n(at(A, pre + w + ".bias") + r0, dk, at(B, pre + w + ".bias") + r1);
    }
    return;
  }
  const int dv = mc.value_dim[size_t(l)][size_t(h)], r0 = v_offset(mc, l, h), r1 = v_offset(nc, l, h);
  const int vd0 = v_width(mc, l), vd1 = v_width(nc, l);
  std::copy_n(at(A, pre + "v.weight") + size_t(r0) * C, size_t(dv) * C, at(B, pre + "v.weight") + size_t(r1) * C);
  std::copy_n(at(A, pre + "v.bias") + r0, dv, at(B, pre + "v.bias") + r1);
  for (int i = 0; i < C; ++i) std::copy_n(at(A, pre + "o.weight") + size_t(i) * vd0 + r0, dv, at(B, pre + "o.weight") + size_t(i) * vd1 + r1);
}

// Head h's position-bias parameters in layer l: its row of the learned table (lin, log: one
// value; t5: one per bucket), or for fixed ALiBi (rpe = "lin", rpe_learnable = false) its slope,
// which is in no tensor; empty without a position bias.
std::vector<double> bias_params(const ModelConfig& mc, const Arena<float>& A, const std::string& pre, int l, int h) {
  const int H = mc.heads[size_t(l)];
  if (const int id = A.find(pre + "rpe"); id >= 0) {
    const int64_t per = A.info(id).size / H;
    const float* b = at(A, pre + "rpe") + h * per;
    return std::vector<double>(b, b + per);
  }
  if (mc.rpe == Rpe::lin) return {alibi_slope(h, H)};
  return {};
}

// --group-heads' groups of layer l: "contiguous": group g holds heads [g H / G, (g + 1) H / G);
// "similar": Ward's agglomerative clustering of the heads' logit signatures (the QK form and
// the relative position bias row, both in logit units): the two groups whose merge adds the
// least within-group sum of squares merge first, until G are left. Merging heads whose
// logits agree keeps the attention pattern the merged head computes closest to each
// member's. Groups are ordered by their first head.
std::vector<std::vector<int>> head_groups(const ModelConfig& mc, const Arena<float>& A, const std::string& pre, int l, int G,
                                          const std::string& by) {
  const int H = mc.heads[size_t(l)];
  std::vector<std::vector<int>> groups;
  if (by == "contiguous") {
    for (int g = 0; g < G; ++g) {
      groups.emplace_back();
      for (int h = g * H / G; h < (g + 1) * H / G; ++h) groups.back().push_back(h);
    }
    return groups;
  }
  std::vector<std::vector<double>> sig(static_cast<size_t>(H));
  for (int h = 0; h < H; ++h) {
    if (mc.dot_product) sig[size_t(h)] = qk_form(mc, A, pre, l, h);
    const auto bias = bias_params(mc, A, pre, l, h);
    sig[size_t(h)].insert(sig[size_t(h)].end(), bias.begin(), bias.end());
  }
  std::vector<std::vector<double>> mean = sig;
  for (int h = 0; h < H; ++h) groups.push_back({h});
  while (int(groups.size()) > G) {
    size_t ba = 0, bb = 1;
    double best = INFINITY;
    for (size_t a = 0; a < groups.size(); ++a)
      for (size_t b = a + 1; b < groups.size(); ++b) {
        double d2 = 0;
        for (size_t i = 0; i < mean[a].size(); ++i) d2 += (mean[a][i] - mean[b][i]) * (mean[a][i] - mean[b][i]);
        const double na = double(groups[a].size()), nb = double(groups[b].size()), cost = na * nb / (na + nb) * d2;
        if (cost < best) { best = cost; ba = a; bb = b; }
      }
    const double na = double(groups[ba].size()), nb = double(groups[bb].size());
    for (size_t i = 0; i < mean[ba].size(); ++i) mean[ba][i] = (na * mean[ba][i] + nb * mean[bb][i]) / (na + nb);
    groups[ba].insert(groups[ba].end(), groups[bb].begin(), groups[bb].end());
    std::sort(groups[ba].begin(), groups[ba].end());
    groups.erase(groups.begin() + std::ptrdiff_t(bb));
    mean.erase(mean.begin() + std::ptrdiff_t(bb));
  }
  std::sort(groups.begin(), groups.end());
  return groups;
}

// --group-heads: layer l's H heads become G, each the merge of its group: the mean of the
// members' QK forms (the logits of the merged head are the members' mean logits) and the sum
// of their OV forms (their outputs add: exact when the members attend alike), each truncated
// to the new head's dimension; per-head position biases are averaged.
void merge_layer(const ModelConfig& mc, const ModelConfig& nc, const Arena<float>& A, Arena<float>& B, const std::string& pre, int l,
                 const std::vector<std::vector<int>>& groups, CompressResult& res) {
  const int G = nc.heads[size_t(l)];
  for (int g = 0; g < G; ++g) {
    const std::vector<int>& members = groups[size_t(g)];
    const double k = double(members.size());
    HeadCompression hc;
    hc.layer = l;
    hc.head = g;
    hc.members = members;
    if (mc.dot_product) {
      std::vector<double> m;
      for (int h : members) {
        const auto mh = qk_form(mc, A, pre, l, h);
        if (m.empty()) m.assign(mh.size(), 0.0);
        for (size_t i = 0; i < m.size(); ++i) m[i] += mh[i] / k;
      }
      hc.qk_rel_error = write_qk(mc, nc, B, pre, l, g, m, nc.head_dim[size_t(l)][size_t(g)]);
    }
    std::vector<double> n;
    for (int h : members) {
      const auto nh = ov_form(mc, A, pre, l, h);
      if (n.empty()) n.assign(nh.size(), 0.0);
      for (size_t i = 0; i < n.size(); ++i) n[i] += nh[i];
    }
    hc.ov_rel_error = write_ov(mc, nc, B, pre, l, g, n, nc.value_dim[size_t(l)][size_t(g)]);
    if (B.find(pre + "rpe") >= 0) {  // (fixed ALiBi slopes became a tensor: see compress_arena)
      std::vector<double> mean;
      for (int h : members) {
        const auto bh = bias_params(mc, A, pre, l, h);
        if (mean.empty()) mean.assign(bh.size(), 0.0);
        for (size_t j = 0; j < mean.size(); ++j) mean[j] += bh[j] / k;
      }
      std::transform(mean.begin(), mean.end(), at(B, pre + "rpe") + g * int64_t(mean.size()), [](double v) { return float(v); });
    }
    res.heads.push_back(hc);
  }
}

}  // namespace

CompressResult compress_checkpoint(const std::string& ckpt, const CompressOptions& o, const std::string& out) {
  const RunConfig cfg = checkpoint_config(ckpt, {});
  const ModelConfig& mc = cfg.model;
  if (mc.kind != "transformer") throw UserError(ckpt + ": model.kind is '" + mc.kind + "': only Transformer heads can be compressed");
  if (o.qk_rank > 0 && !mc.dot_product) throw UserError("--qk-rank: " + ckpt + " has no dot product (model.dot_product = false)");
  auto old_model = make_model<float>(mc, 1);
  load_checkpoint(ckpt, old_model->arena);
  CompressResult res = compress_arena(cfg, old_model->arena, o);
  auto new_model = make_model<float>(res.config.model, 1);
  std::copy(res.params.begin(), res.params.end(), new_model->arena.data().begin());
  save_checkpoint(out, new_model->arena, resolved_toml(res.config));
  return res;
}

CompressResult compress_arena(const RunConfig& cfg, const Arena<float>& A, const CompressOptions& o) {
  const ModelConfig& mc = cfg.model;
  if (o.qk_rank < 0 || o.ov_rank < 0) throw UserError("--qk-rank/--ov-rank: ranks must be >= 1");
  if (o.group_heads < 0) throw UserError("--group-heads: must be >= 1 (got " + std::to_string(o.group_heads) + ")");
  if (o.qk_rank == 0 && o.ov_rank == 0 && o.group_heads == 0) throw UserError("compress: give --qk-rank, --ov-rank and/or --group-heads");
  if (o.group_by != "similar" && o.group_by != "contiguous")
    throw UserError("--group-by: '" + o.group_by + "' is not allowed (similar, contiguous)");
  if (o.group_heads > 0 && !o.heads.empty()) throw UserError("--group-heads: not with --heads (groups are formed from every head of a layer)");
  if (o.qk_rank > 0 && !mc.dot_product) throw UserError("--qk-rank: the model has no dot product (model.dot_product = false)");
  const std::vector<int> layers = parse_selection(o.layers, mc.layers, "--layers");
  int max_heads = 0;
  for (int l : layers) max_heads = std::max(max_heads, mc.heads[size_t(l)]);
  for (int h : o.heads)
    if (h < 0 || h >= max_heads)
      throw UserError("--heads: " + std::to_string(h) + " is out of range (the selected layers have " + std::to_string(max_heads) + " heads)");

  CompressResult res;
  res.config = cfg;
  ModelConfig& nc = res.config.model;
  // The selected heads per layer; each shrinks to the rank given (a head's dimension is its own).
  std::vector<std::set<int>> chosen(size_t(mc.layers));
  for (int l : layers)
    for (int h : o.heads.empty() ? parse_selection({}, mc.heads[size_t(l)], "") : o.heads)
      if (h < mc.heads[size_t(l)]) chosen[size_t(l)].insert(h);
  auto shrink = [](int rank, int d) { return rank > 0 ? std::min(rank, d) : d; };
  std::vector<std::vector<std::vector<int>>> groups(size_t(mc.layers));  // --group-heads: the members of each merged head
  for (int l = 0; l < mc.layers; ++l) {
    const size_t L = size_t(l);
    if (chosen[L].empty()) continue;
    if (o.group_heads == 0) {
      for (int h : chosen[L]) {
        nc.head_dim[L][size_t(h)] = shrink(o.qk_rank, mc.head_dim[L][size_t(h)]);
        nc.value_dim[L][size_t(h)] = shrink(o.ov_rank, mc.value_dim[L][size_t(h)]);
      }
      continue;
    }
    if (o.group_heads > mc.heads[L])
      throw UserError("--group-heads: " + std::to_string(o.group_heads) + " groups, but layer " + std::to_string(l) + " has " +
                      std::to_string(mc.heads[L]) + " heads");
    groups[L] = head_groups(mc, A, "layers." + std::to_string(l) + ".attn.", l, o.group_heads, o.group_by);
    nc.heads[L] = o.group_heads;
    nc.head_dim[L].clear();
    nc.value_dim[L].clear();
    for (const auto& members : groups[L]) {  // a merged head is as wide as its widest member (or the rank given)
      int dk = 0, dv = 0;
      for (int h : members) dk = std::max(dk, mc.head_dim[L][size_t(h)]), dv = std::max(dv, mc.value_dim[L][size_t(h)]);
      nc.head_dim[L].push_back(shrink(o.qk_rank, dk));
      nc.value_dim[L].push_back(shrink(o.ov_rank, dv));
    }
  }
  // Merged heads of fixed ALiBi keep the mean of their members' slopes, which no fixed slope
  // formula gives for G heads: the compressed model's slopes become a tensor (rpe_learnable),
  // initialised to the ALiBi slopes, so every layer that is not merged computes as before.
  const bool alibi_to_tensor = o.group_heads > 0 && mc.rpe == Rpe::lin && !mc.rpe_learnable;
  if (alibi_to_tensor) nc.rpe_learnable = true;
  auto new_model = make_model<float>(nc, 1);
  Arena<float>& B = new_model->arena;
  // Every tensor whose shape is unchanged is copied; the attention projections are rebuilt.
  for (const auto& p : B.params()) {
    const int id = A.find(p.name);
    if (id < 0 && alibi_to_tensor && p.name.size() > 8 && p.name.compare(p.name.size() - 8, 8, "attn.rpe") == 0) continue;
    if (id < 0) throw UserError("compress: internal: no tensor '" + p.name + "' in the original model");
    if (A.info(id).shape == p.shape) std::copy_n(A.data().data() + A.info(id).offset, p.size, B.data().data() + p.offset);
  }
  for (int l = 0; l < mc.layers; ++l) {
    const std::string pre = "layers." + std::to_string(l) + ".attn.";
    if (o.group_heads > 0) {
      if (!chosen[size_t(l)].empty()) merge_layer(mc, nc, A, B, pre, l, groups[size_t(l)], res);
      continue;
    }
    for (int h = 0; h < mc.heads[size_t(l)]; ++h) {
      const bool sel = chosen[size_t(l)].count(h) > 0;
      if (mc.dot_product && !(sel && o.qk_rank > 0)) copy_head(mc, nc, A, B, pre, l, h, true);  // unchanged, maybe moved
      if (!(sel && o.ov_rank > 0)) copy_head(mc, nc, A, B, pre, l, h, false);
      if (!sel) continue;
      HeadCompression hc;
      hc.layer = l;
      hc.head = h;
      if (o.qk_rank > 0) hc.qk_rel_error = write_qk(mc, nc, B, pre, l, h, qk_form(mc, A, pre, l, h), o.qk_rank);
      if (o.ov_rank > 0) hc.ov_rel_error = write_ov(mc, nc, B, pre, l, h, ov_form(mc, A, pre, l, h), o.ov_rank);
      res.heads.push_back(hc);
    }
  }
  res.params_before = int64_t(A.size());
  res.params_after = int64_t(B.size());
  res.params.assign(B.data().begin(), B.data().end());
  return res;
}

}  // namespace attnlab

namespace attnlab {

namespace {

using Fill = std::function<void(Arena<float>&)>;
Fill fill_with(const std::vector<float>& p) {
  return [&p](Arena<float>& a) { std::copy(p.begin(), p.end(), a.data().begin()); };
}

// One row of a curve: what `res` (a compression of the model of cfg) removes and the loss it adds.
CurveRow measured_row(const RunConfig& cfg, const CompressResult& res, double base_val_loss, CurveRow row) {
  row.params_removed = res.params_before - res.params_after;
  row.flops_removed = transformer_forward_flops(cfg.model, cfg.task.seq_len) - transformer_forward_flops(res.config.model, cfg.task.seq_len);
  row.val_loss = evaluate_with(res.config, fill_with(res.params))["val_loss"].get<double>();
  row.delta = row.val_loss - base_val_loss;
  return row;
}

// The checkpoint's config, its Transformer (UserError for another kind) and its validation loss.
struct Loaded {
  RunConfig cfg;
  std::unique_ptr<Model<float>> model;
  std::vector<float> params;
  double base_val_loss = 0;
};
Loaded load_transformer(const std::string& ckpt) {
  Loaded m;
  m.cfg = checkpoint_config(ckpt, {});
  if (m.cfg.model.kind != "transformer")
    throw UserError(ckpt + ": model.kind is '" + m.cfg.model.kind + "': only Transformer heads can be compressed");
  m.model = make_model<float>(m.cfg.model, 1);
  load_checkpoint(ckpt, m.model->arena);
  m.params.assign(m.model->arena.data().begin(), m.model->arena.data().end());
  m.base_val_loss = evaluate_with(m.cfg, fill_with(m.params))["val_loss"].get<double>();
  return m;
}

// A curve row's rel_error: the mean over the rewritten heads of the relative errors of the
// forms the compression rewrote (QK and/or OV).
double mean_rel_error(const CompressResult& res, bool qk, bool ov) {
  if (res.heads.empty() || (!qk && !ov)) return 0;
  double e = 0;
  for (const auto& h : res.heads) e += (qk ? h.qk_rel_error : 0) + (ov ? h.ov_rel_error : 0);
  return e / double(res.heads.size()) / double(int(qk) + int(ov));
}

}  // namespace

CompressionCurve compression_curve(const std::string& ckpt, const std::vector<int>& ranks, const std::string& forms,
                                   const std::vector<int>& layers_in, bool heads_too,
                                   const std::function<void(const std::string&)>& progress) {
  if (forms != "qk" && forms != "ov" && forms != "both") throw UserError("--forms: '" + forms + "' is not allowed (qk, ov, both)");
  if (ranks.empty()) throw UserError("--curve: give at least one rank");
  for (int r : ranks)
    if (r < 1) throw UserError("--curve: ranks must be >= 1 (got " + std::to_string(r) + ")");
  const Loaded m = load_transformer(ckpt);
  const RunConfig& cfg = m.cfg;
  const ModelConfig& mc = cfg.model;
  if (forms != "ov" && !mc.dot_product) throw UserError("--forms: " + ckpt + " has no dot product; use --forms ov");
  const Arena<float>& A = m.model->arena;
  CompressionCurve out;
  out.base_val_loss = m.base_val_loss;
  out.params_total = int64_t(A.size());
  const std::vector<int> layers = parse_selection(layers_in, mc.layers, "--layers");
  for (int r : ranks) {
    struct Scope { std::string name; std::vector<int> layers, heads; int layer = -1, head = -1; };
    std::vector<Scope> scopes = {{"model", layers, {}}};
    if (layers_in.empty() && mc.layers >= 2) {  // the first half of the layers, and the rest
      std::vector<int> early, late;
      for (int l = 0; l < mc.layers; ++l) (l < mc.layers / 2 ? early : late).push_back(l);
      scopes.push_back({"early", early, {}});
      scopes.push_back({"late", late, {}});
    }
    for (int l : layers) scopes.push_back({"layer", {l}, {}, l});
    if (heads_too)
      for (int l : layers)
        for (int h = 0; h < mc.heads[size_t(l)]; ++h) scopes.push_back({"head", {l}, {h}, l, h});
    for (const Scope& sc : scopes) {
      CompressOptions o;
      o.qk_rank = forms != "ov" ? r : 0;
      o.ov_rank = forms != "qk" ? r : 0;
      o.layers = sc.layers;
      o.heads = sc.heads;
      const CompressResult res = compress_arena(cfg, A, o);
      CurveRow row;
      row.scope = sc.name;
      row.layer = sc.layer;
      row.head = sc.head;
      row.rank = r;
      row.rel_error = mean_rel_error(res, o.qk_rank > 0, o.ov_rank > 0);
      out.rows.push_back(measured_row(cfg, res, out.base_val_loss, row));
      if (progress)
        progress("rank " + std::to_string(r) + " " + sc.name + (sc.layer >= 0 ? " " + std::to_string(sc.layer) : "") +
                 (sc.head >= 0 ? "." + std::to_string(sc.head) : ""));
    }
  }
  return out;
}

CompressionCurve group_comparison(const std::string& ckpt, const std::vector<int>& groups) {
  const Loaded m = load_transformer(ckpt);
  const RunConfig& cfg = m.cfg;
  const ModelConfig& mc = cfg.model;
  const Arena<float>& A = m.model->arena;
  CompressionCurve out;
  out.base_val_loss = m.base_val_loss;
  out.params_total = int64_t(A.size());
  for (int G : groups) {
    if (G < 1) throw UserError("train.compress_groups: groups must be >= 1 (got " + std::to_string(G) + ")");
    CompressOptions go;
    go.group_heads = G;
    int widest = 0;
    for (int l = 0; l < mc.layers; ++l) {
      if (mc.heads[size_t(l)] <= G) continue;  // nothing to merge there
      go.layers.push_back(l);
      for (size_t h = 0; h < mc.head_dim[size_t(l)].size(); ++h)
        widest = std::max({widest, mc.head_dim[size_t(l)][h], mc.value_dim[size_t(l)][h]});
    }
    if (go.layers.empty()) continue;
    const CompressResult grouped = compress_arena(cfg, A, go);
    const int64_t saved = grouped.params_before - grouped.params_after;
    // The SVD partner: both forms of every head of the same layers at the rank whose saving is
    // closest to the grouping's (on a tie the smaller rank: it removes more).
    CompressResult svd;
    int svd_rank = 0;
    int64_t gap = -1;
    for (int r = 1; r <= widest; ++r) {
      CompressOptions so;
      so.layers = go.layers;
      so.qk_rank = mc.dot_product ? r : 0;
      so.ov_rank = r;
      CompressResult res = compress_arena(cfg, A, so);
      const int64_t g = std::llabs(res.params_before - res.params_after - saved);
      if (gap < 0 || g < gap) gap = g, svd_rank = r, svd = std::move(res);
    }
    CurveRow row;
    row.scope = "group";
    row.groups = G;
    row.rel_error = mean_rel_error(grouped, mc.dot_product, true);
    out.rows.push_back(measured_row(cfg, grouped, out.base_val_loss, row));
    row.scope = "group_svd";
    row.rank = svd_rank;
    row.rel_error = mean_rel_error(svd, mc.dot_product, true);
    out.rows.push_back(measured_row(cfg, svd, out.base_val_loss, row));
  }
  return out;
}

}  // namespace attnlab
