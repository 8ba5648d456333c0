#include "analysis/planner.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace attnlab {

namespace {

std::vector<int64_t> shares(int64_t D, int L, const std::string& profile) {
  std::vector<double> w(size_t(L), 1.0);
  if (profile == "front" && L > 1)
    for (int l = 0; l < L; ++l) w[size_t(l)] = 3.0 - 2.0 * double(l) / double(L - 1);
  double sum = 0;
  for (double v : w) sum += v;
  std::vector<int64_t> s(static_cast<size_t>(L));
  for (int l = 0; l < L; ++l) s[size_t(l)] = int64_t(std::floor(double(D) * w[size_t(l)] / sum));
  return s;
}

std::string fmt_loss(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

std::string trade_off_text(const Calibration& c) {
  std::string t = c.metric;
  for (size_t i = 0; i < c.heads.size(); ++i) t += (i ? ", H " : " H ") + std::to_string(c.heads[i]) + " " + fmt_loss(c.head_losses[i]);
  return t;
}

}  // namespace

size_t best_index(const std::vector<double>& losses) {
  size_t b = losses.size();
  for (size_t i = 0; i < losses.size(); ++i)
    if (std::isfinite(losses[i]) && (b == losses.size() || losses[i] < losses[b])) b = i;
  if (b == losses.size()) throw UserError("--calibrate: every pilot run diverged or gave no validation loss");
  return b;
}

std::vector<int> calibration_heads(int64_t D, int L, int d_max) {
  if (L < 1) throw UserError("--layers: must be >= 1 (got " + std::to_string(L) + ")");
  const int64_t s = D / L;
  std::vector<int> h;
  for (int64_t H = 1; s / H >= 2; H *= 2)
    if (s / H <= d_max) h.push_back(int(H));
  if (h.empty()) throw UserError("--calibrate: --budget " + std::to_string(D) + " leaves no layer two dimensions: nothing to calibrate");
  return h;
}

int saturation_point(const std::vector<int>& dims, const std::vector<double>& losses, double tol) {
  const double best = losses[best_index(losses)];
  for (size_t i = 0; i < dims.size(); ++i)
    if (std::isfinite(losses[i]) && losses[i] <= best + tol * std::fabs(best)) return dims[i];
  return dims.back();  // unreachable: the best loss qualifies
}

std::vector<int> calibration_dims(int64_t D, int L, int M, int d_max) {
  if (L < 1 || M < 1) throw UserError("--calibrate: --layers and --memories must be >= 1");
  const auto s = D / L;  // the smallest share of either profile is at most the uniform one
  const int top = int(std::min<int64_t>(d_max, s / M));
  if (top < 2) throw UserError("--calibrate: --budget " + std::to_string(D) + " leaves " + std::to_string(M) +
                               " heads per layer less than dimension 2: nothing to calibrate");
  std::vector<int> dims;
  for (int d = 2; d < top; d *= 2) dims.push_back(d);
  dims.push_back(top);
  return dims;
}

int measured_saturation(int T, int K, std::string* why) {
  int d = 4;
  while (double(d) * d < double(T)) d *= 2;
  std::string w = "d*(T = " + std::to_string(T) + ") = " + std::to_string(d) +
                  ", the smallest power of two >= sqrt(T), at least 4 (p1_e2b at full scale, 4-gram task, 4 heads, 5 seeds: "
                  "the bend in d at 4, 8, 16 for T = 16, 64, 256";
  w += T > 256 ? "; T beyond 256 is extrapolated)" : T < 16 ? "; T below 16 was not measured)" : ")";
  if (K > 0 && 2 * K > d) {
    d = 2 * K;
    w += "; raised to 2K = " + std::to_string(d) + " for key dimension K = " + std::to_string(K) +
         " (p1_e2c in the regime, T = 32 to 256: the bend one doubling past K; p1_e2d: at 2K to 4K)";
  }
  if (why) *why = w;
  return d;
}

namespace {

void check_request(const PlanRequest& r, int M) {
  if (r.layers < 1) throw UserError("--layers: must be >= 1 (got " + std::to_string(r.layers) + ")");
  if (M < 1) throw UserError("--memories: must be >= 1 (got " + std::to_string(M) + ")");
  if (r.seq_len < 1) throw UserError("--seq-len: must be >= 1 (got " + std::to_string(r.seq_len) + ")");
  if (r.key_dim < 0) throw UserError("--key-dim: must be >= 0 (got " + std::to_string(r.key_dim) + ")");
  if (r.d_max < 1) throw UserError("--max-head-dim: must be >= 1 (got " + std::to_string(r.d_max) + ")");
  if (r.profile != "front" && r.profile != "uniform") throw UserError("--profile: '" + r.profile + "' is not allowed (front, uniform)");
}

// Rule 1 (or 5): why H heads.
std::string heads_reason(int M, int l, const Calibration* cal) {
  if (cal && cal->best_heads > 0)
    return std::to_string(M) + " heads: the best pilot of the heads-vs-dimension trade-off at this budget (" + trade_off_text(*cal) +
           "; p1_e1's trade-off, measured on this task)";
  if (l > 0) return std::to_string(M) + " heads as in layer 0";
  return std::to_string(M) + " heads, one per memory to fetch (p1_e1 at full scale: the best head count is the number of tokens "
         "to fetch, 4 [4, 8] on the 4-gram task, 8 [8, 8] on the 8-gram; 32 heads left 68% more error than 4)";
}

// Rule 2 (or 5): the saturation point the plan's head dimension stops at, and why.
int saturation_for(const PlanRequest& r, const Calibration* cal, std::string& why) {
  if (cal && cal->saturation > 0) {
    if (cal->saturation == cal->dims.back()) {
      why = "--calibrate found no saturation up to d = " + std::to_string(cal->dims.back()) + " (the whole share is spent)";
      return r.d_max;
    }
    const size_t at = size_t(std::find(cal->dims.begin(), cal->dims.end(), cal->saturation) - cal->dims.begin()), b = best_index(cal->losses);
    why = "the saturation point --calibrate measured (" + cal->metric + " within " + fmt_loss(100 * cal->tolerance) +
          "% of the best pilot's: d " + std::to_string(cal->saturation) + " " + fmt_loss(cal->losses[at]) + ", d " +
          std::to_string(cal->dims[b]) + " " + fmt_loss(cal->losses[b]) + ")";
    return cal->saturation;
  }
  return measured_saturation(r.seq_len, r.key_dim, &why);
}

std::string share_reason(const PlanRequest& r, int l) {
  if (r.profile == "front" && r.layers > 1)
    return l == 0 ? "the largest share (front-loaded, as the paper suggests; p1_e3 at full scale: 6.5% better than uniform on the "
                    "4-gram task but within noise, 1.1% worse on text)"
                  : "a smaller share than layer " + std::to_string(l - 1) + " (front-loaded, p1_e3)";
  return std::string("an equal share of the budget (p1_e3 at full scale: uniform beat front- and back-loading on text by 1.1%)") +
         (l == 0 ? "; equal heads within the layer (no measurement here favours mixed head sizes)" : "");
}

}  // namespace

Plan plan_allocation(const PlanRequest& r, const Calibration* cal) {
  const int M = cal && cal->best_heads > 0 ? cal->best_heads : r.memories;
  check_request(r, M);
  Plan p;
  p.budget = r.budget;
  p.seq_len = r.seq_len;
  p.memories = M;
  p.profile = r.profile;
  const auto s = shares(r.budget, r.layers, r.profile);
  for (int l = 0; l < r.layers; ++l)
    if (s[size_t(l)] < M)
      throw UserError("--budget: " + std::to_string(r.budget) + " leaves layer " + std::to_string(l) + " " + std::to_string(s[size_t(l)]) +
                      " dimensions, fewer than one per memory (" + std::to_string(M) + "); raise the budget or lower --memories");
  std::string sat_why;
  const int d_sat = std::min(saturation_for(r, cal, sat_why), r.d_max);
  const bool spend_all = cal && cal->saturation > 0 && cal->saturation == cal->dims.back();
  for (int l = 0; l < r.layers; ++l) {
    const int64_t share = s[size_t(l)];
    LayerPlan lp;
    lp.heads = M;
    std::string dim_why;
    if (spend_all || share / M <= d_sat) {
      lp.head_dim = int(share / M);
      dim_why = spend_all ? sat_why : "head dimension " + std::to_string(lp.head_dim) + ", what the share allows, at most the saturation point: " + sat_why;
      if (share / M > r.d_max) {  // rule 4 (reachable when no saturation was found)
        lp.heads = int((share + r.d_max - 1) / r.d_max);
        lp.head_dim = int(share / lp.heads);
        dim_why = std::to_string(lp.heads) + " heads of dimension <= " + std::to_string(r.d_max) + " (--max-head-dim); " + sat_why;
      }
    } else {
      lp.head_dim = d_sat;
      dim_why = "head dimension " + std::to_string(lp.head_dim) + ", the saturation point: " + sat_why + "; the rest of the share (" +
                std::to_string(share - int64_t(M) * lp.head_dim) +
                ") left unspent (beyond the bend returns in d stop, p1_e2b/p1_e2c; more heads than memories cost error, p1_e1)";
      if (d_sat == r.d_max) dim_why += "; capped at --max-head-dim " + std::to_string(r.d_max);
    }
    lp.reason = heads_reason(M, l, cal) + "; " + dim_why + "; " + share_reason(r, l);
    p.spent += int64_t(lp.heads) * lp.head_dim;
    p.layers.push_back(lp);
  }
  return p;
}

nlohmann::ordered_json plan_json(const Plan& p) {
  nlohmann::ordered_json j{{"budget", p.budget}, {"spent", p.spent}, {"profile", p.profile}, {"seq_len", p.seq_len}, {"memories", p.memories}};
  auto ls = nlohmann::ordered_json::array();
  for (const auto& l : p.layers) ls.push_back({{"heads", l.heads}, {"head_dim", l.head_dim}, {"reason", l.reason}});
  j["layers"] = ls;
  return j;
}

Plan conventional_allocation(int64_t D, int L, int d) {
  if (L < 1) throw UserError("--layers: must be >= 1 (got " + std::to_string(L) + ")");
  Plan p;
  p.budget = D;
  p.profile = "uniform";
  for (int l = 0; l < L; ++l) {
    const int64_t share = D / L;
    LayerPlan lp;
    lp.head_dim = int(std::min<int64_t>(d, std::max<int64_t>(1, share)));
    lp.heads = int(std::max<int64_t>(1, share / lp.head_dim));
    lp.reason = "baseline: an equal share in heads of dimension " + std::to_string(lp.head_dim);
    p.spent += int64_t(lp.heads) * lp.head_dim;
    p.layers.push_back(lp);
  }
  return p;
}

}  // namespace attnlab
