#include "analysis/compress_summary.h"

#include <cmath>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "analysis/compress.h"
#include "io/atomic_file.h"

namespace attnlab {

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = x.size();
  if (n < 3 || y.size() != n) return NAN;
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) { mx += x[i] / double(n); my += y[i] / double(n); }
  double sxx = 0, syy = 0, sxy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
    sxy += (x[i] - mx) * (y[i] - my);
  }
  return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : NAN;
}

namespace {

using Summary = nlohmann::ordered_json;
std::string rk(int r) { return ".r" + std::to_string(r); }

// Loss added by compressing the late half minus the early half (< 0: late layers shrink more cheaply).
void add_late_minus_early(Summary& s, const std::vector<int>& ranks, const std::string& delta, const std::string& out) {
  for (int r : ranks) {
    const std::string late = delta + ".late" + rk(r), early = delta + ".early" + rk(r);
    if (s.contains(late) && s.contains(early)) s[out + rk(r)] = s[late].get<double>() - s[early].get<double>();
  }
}

// Are the near-uniform layers the cheap ones to compress (issue 28)? Across layers, entropy
// ratio against loss added per parameter removed.
void add_entropy_correlation(Summary& s, const std::vector<int>& ranks, int layers) {
  for (int r : ranks) {
    std::vector<double> entropy, cost;
    for (int l = 0; l < layers; ++l) {
      const std::string at = "l" + std::to_string(l) + rk(r), h = "attn_entropy_ratio.l" + std::to_string(l);
      if (!s.contains(h) || !s[h].is_number() || !s.contains("compress_delta." + at) || !s.contains("compress_saved." + at)) continue;
      const double saved = s["compress_saved." + at].get<double>();
      if (!(saved > 0)) continue;
      entropy.push_back(s[h].get<double>());
      cost.push_back(s["compress_delta." + at].get<double>() / saved);
    }
    if (const double c = pearson(entropy, cost); std::isfinite(c)) s["compress_entropy_corr" + rk(r)] = c;
  }
}

// train.compress_heads: one head compressed at a time (the paper's Figs. 4 and 6); the mean
// loss added per layer and over the heads of the early and late halves of the layers.
void add_single_head_means(Summary& s, const CompressionCurve& cc, int layers) {
  std::map<std::string, std::pair<double, int>> sums;  // field -> (sum, count)
  for (const CurveRow& r : cc.rows) {
    if (r.scope != "head") continue;
    std::vector<std::string> scopes = {"l" + std::to_string(r.layer)};
    if (layers >= 2) scopes.push_back(r.layer < layers / 2 ? "early" : "late");  // as the layer scopes: no halves of one layer
    for (const std::string& at : scopes) {
      auto& [sum, n] = sums["compress_head_delta." + at + rk(r.rank)];
      sum += r.delta;
      ++n;
    }
  }
  for (const auto& [field, sn] : sums) s[field] = sn.first / sn.second;
}

// train.compress_groups: each G's grouping beside its SVD partner.
void add_group_fields(Summary& s, const CompressionCurve& cc) {
  for (const CurveRow& r : cc.rows) {
    if (r.groups == 0) continue;
    const std::string g = ".g" + std::to_string(r.groups), what = r.scope == "group" ? "compress_group" : "compress_group_svd";
    s[what + "_delta" + g] = r.delta;
    s[what + "_saved" + g] = r.params_removed;
    if (r.scope == "group_svd") {
      s["compress_group_svd_rank" + g] = r.rank;
      if (s.contains("compress_group_delta" + g)) s["compress_group_minus_svd" + g] = s["compress_group_delta" + g].get<double>() - r.delta;
    }
  }
}

}  // namespace

void add_compression_curve(const RunConfig& cfg, const std::string& dir) {
  const TrainConfig& tc = cfg.train;
  if (!wants_compression(tc)) return;
  std::ifstream in(dir + "/summary.json");
  Summary s = Summary::parse(in, nullptr, false);
  if (s.is_discarded() || s.value("status", "") != "completed") return;
  const std::string ckpt = dir + "/model.safetensors";
  CompressionCurve cc;
  if (!tc.compress_ranks.empty()) cc = compression_curve(ckpt, tc.compress_ranks, "qk", {}, tc.compress_heads, nullptr);
  if (!tc.compress_groups.empty()) {
    CompressionCurve g = group_comparison(ckpt, tc.compress_groups);
    cc.base_val_loss = g.base_val_loss;
    cc.rows.insert(cc.rows.end(), g.rows.begin(), g.rows.end());
  }
  Summary rows = Summary::array();
  for (const CurveRow& r : cc.rows) {
    if (r.scope != "head" && r.groups == 0) {
      const std::string at = r.scope == "layer" ? "l" + std::to_string(r.layer) : r.scope;
      s["compress_delta." + at + rk(r.rank)] = r.delta;
      s["compress_saved." + at + rk(r.rank)] = r.params_removed;
    }
    Summary row{{"scope", r.scope}, {"layer", r.layer}, {"head", r.head}, {"rank", r.rank}};
    if (r.groups > 0) row["groups"] = r.groups;
    row["params_removed"] = r.params_removed;
    row["flops_removed"] = r.flops_removed;
    row["val_loss"] = r.val_loss;
    row["delta"] = r.delta;
    row["rel_error"] = r.rel_error;
    rows.push_back(row);
  }
  add_late_minus_early(s, tc.compress_ranks, "compress_delta", "compress_late_minus_early");
  add_entropy_correlation(s, tc.compress_ranks, cfg.model.layers);
  if (tc.compress_heads) {
    add_single_head_means(s, cc, cfg.model.layers);
    add_late_minus_early(s, tc.compress_ranks, "compress_head_delta", "compress_head_late_minus_early");
  }
  add_group_fields(s, cc);
  write_file_atomic(dir + "/compression.json", Summary{{"base_val_loss", cc.base_val_loss}, {"rows", rows}}.dump(2) + "\n");
  write_file_atomic(dir + "/summary.json", s.dump(2) + "\n");
}

}  // namespace attnlab

