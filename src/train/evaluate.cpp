#include "train/evaluate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/dist.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "train/trainer.h"

namespace attnlab {

void add_probes(nlohmann::ordered_json& j, const std::vector<HeadProbe>& ps) {
  if (ps.empty()) return;
  double mx = 0, mean = 0, ent = 0, ratio = 0, rank = 0;
  int ranked = 0, layers = 0;
  for (const HeadProbe& p : ps) {
    mx = std::max(mx, p.max_abs_logit);
    mean += p.mean_abs_logit;
    ent += p.entropy;
    ratio += p.entropy_ratio;
    if (std::isfinite(p.qk_eff_rank)) { rank += p.qk_eff_rank; ++ranked; }
    layers = std::max(layers, p.layer + 1);
  }
  const double n = double(ps.size());
  j["max_abs_logit"] = mx;
  j["mean_abs_logit"] = mean / n;
  j["attn_entropy"] = ent / n;
  j["attn_entropy_ratio"] = ratio / n;
  if (ranked > 0) j["qk_eff_rank"] = rank / ranked;
  for (int l = 0; l < layers; ++l) {
    double lmx = 0, lratio = 0, cnt = 0;
    for (const HeadProbe& p : ps)
      if (p.layer == l) { lmx = std::max(lmx, p.max_abs_logit); lratio += p.entropy_ratio; cnt += 1; }
    j["max_abs_logit.l" + std::to_string(l)] = lmx;
    j["attn_entropy_ratio.l" + std::to_string(l)] = cnt > 0 ? lratio / cnt : 0.0;
  }
  nlohmann::ordered_json heads = nlohmann::ordered_json::array();
  for (const HeadProbe& p : ps) {
    nlohmann::ordered_json h{{"layer", p.layer}, {"head", p.head}, {"max_abs_logit", p.max_abs_logit},
                             {"mean_abs_logit", p.mean_abs_logit}, {"entropy", p.entropy}, {"entropy_ratio", p.entropy_ratio}};
    if (std::isfinite(p.qk_eff_rank)) h["qk_eff_rank"] = p.qk_eff_rank;
    heads.push_back(h);
  }
  j["heads"] = heads;
}


void TargetMoments::add(const Batch& b) {
  const size_t P = b.mask.size(), D = sum.size();
  if (D == 0 || b.y.size() != P * D) return;  // token targets, or no real targets
  for (size_t i = 0; i < P; ++i) {
    if (!(b.mask[i] > 0)) continue;
    for (size_t j = 0; j < D; ++j) {
      const double y = b.y[i * D + j];
      sum[j] += y;
      sum2[j] += y * y;
    }
    count += 1;
  }
}

double TargetMoments::variance() const {
  if (count <= 0 || sum.empty()) return 0;
  double v = 0;
  for (size_t j = 0; j < sum.size(); ++j) v += sum2[j] / count - (sum[j] / count) * (sum[j] / count);
  return v / double(sum.size());
}

// Mean loss over a whole split, in chunks of eval_batch; also the targets' variance.
EvalResult evaluate(LossRunner& runner, const Task& task, Split split, int64_t n, int eval_batch, EvalCache* cache, bool spread) {
  const int ranks = spread ? dist::size() : 1, rank = spread ? dist::rank() : 0;
  const int64_t chunks = (n + eval_batch - 1) / eval_batch;
  size_t k = 0;  // this rank's chunks so far (the cache holds only those)
  Batch fresh;
  std::vector<int64_t> idx;
  double loss_sum = 0, weight = 0;
  std::vector<double> pos;  // per-position loss and mask sums (LossRunner::run)
  TargetMoments ym(task.vocab() > 0 ? 0 : task.d_out());
  size_t bytes = 0;
  const bool use_cache = cache && !cache->off;
  for (int64_t start = 0, i = 0; start < n; start += eval_batch, ++i) {
    if ((chunks - 1 - i) % ranks != rank) continue;
    const int B = int(std::min<int64_t>(eval_batch, n - start));
    Batch* bp = &fresh;
    if (use_cache && cache->full) {
      bp = &cache->batches[k++];
    } else {
      idx.resize(size_t(B));
      std::iota(idx.begin(), idx.end(), start);
      task.fill(split, idx.data(), B, fresh);
      if (use_cache) {
        bytes += fresh.x.size() * 4 + fresh.y.size() * 4 + fresh.mask.size() * 4 + fresh.tokens.size() * 4 + fresh.targets.size() * 4;
        if (bytes <= EvalCache::kMaxBytes) cache->batches.push_back(fresh);
      }
    }
    const Batch& b = *bp;
    const double w = std::accumulate(b.mask.begin(), b.mask.end(), 0.0);
    loss_sum += runner.run(b, false, &pos) * w;
    weight += w;
    ym.add(b);
  }
  if (use_cache && !cache->full) {
    if (bytes <= EvalCache::kMaxBytes) {
      cache->full = true;
    } else {
      cache->off = true;
      cache->batches.clear();
    }
  }
  if (ranks > 1) {  // every rank has the same D (the task's) and T, so the same vector length
    const size_t D = ym.sum.size();
    double len[2] = {double(pos.size()), pos.empty() ? 0.0 : 1.0};  // a rank without chunks has no pos yet
    dist::allreduce_sum(len, 2);
    pos.resize(len[1] > 0 ? size_t(len[0] / len[1] + 0.5) : 0, 0.0);
    std::vector<double> v = {loss_sum, weight, ym.count};
    v.insert(v.end(), ym.sum.begin(), ym.sum.end());
    v.insert(v.end(), ym.sum2.begin(), ym.sum2.end());
    v.insert(v.end(), pos.begin(), pos.end());
    dist::allreduce_sum(v.data(), v.size());
    loss_sum = v[0], weight = v[1], ym.count = v[2];
    std::copy_n(v.begin() + 3, D, ym.sum.begin());
    std::copy_n(v.begin() + 3 + std::ptrdiff_t(D), D, ym.sum2.begin());
    std::copy(v.begin() + 3 + 2 * std::ptrdiff_t(D), v.end(), pos.begin());
  }
  EvalResult r;
  r.loss = weight > 0 ? loss_sum / weight : 0;
  r.target_var = ym.variance();
  r.pos = std::move(pos);
  return r;
}

void add_position_losses(nlohmann::ordered_json& j, const std::vector<double>& pos, bool by_position) {
  const int T = int(pos.size() / 2);
  if (T == 0) return;
  if (by_position) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (int t = 0; t < T; ++t) a.push_back(pos[size_t(T + t)] > 0 ? nlohmann::ordered_json(pos[size_t(t)] / pos[size_t(T + t)]) : nullptr);
    j["val_loss_by_position"] = a;
  }
  std::vector<double> means;
  for (int lo = 0, hi = 4; lo < T; lo = hi, hi *= 4) {
    double s = 0, w = 0;
    for (int t = lo; t < std::min(hi, T); ++t) s += pos[size_t(t)], w += pos[size_t(T + t)];
    if (!(w > 0)) continue;
    means.push_back(s / w);
    j["val_loss_pos." + std::to_string(lo) + "_" + std::to_string(std::min(hi, T))] = means.back();
  }
  if (means.size() >= 2 && means[means.size() - 2] > 0) j["val_loss_pos_ratio"] = means.back() / means[means.size() - 2];
}


RunConfig checkpoint_config(const std::string& path, const std::vector<std::string>& overrides) {
  const TensorFile f = read_safetensors(path);
  auto it = f.metadata.find("config");
  if (it == f.metadata.end() || f.metadata.count("format") == 0 || f.metadata.at("format") != "attnlab")
    throw UserError(path + ": not an attnlab checkpoint (its metadata has no attnlab \"config\")");
  const std::string source = path + " (its config)";
  const RunConfig stored = parse_run_config(it->second, source, {});
  // Another task.seq_len carries model.max_len with it (derived from the task), unless the
  // positions are learned: their table has the trained length.
  std::vector<std::string> ov = overrides;
  bool has_max_len = false;
  for (const auto& o : overrides) has_max_len = has_max_len || o.rfind("model.max_len=", 0) == 0;
  for (const auto& o : overrides)
    if (o.rfind("task.seq_len=", 0) == 0 && !has_max_len) ov.push_back("model.max_len=" + o.substr(13));
  RunConfig cfg = parse_run_config(it->second, source, ov);
  if (cfg.task.seq_len != stored.task.seq_len && stored.model.pos == Pos::learned)
    throw UserError(source + ": task.seq_len: the model learned absolute positions up to " +
                    std::to_string(stored.model.max_len) + "; it cannot be evaluated at seq_len " + std::to_string(cfg.task.seq_len));
  return cfg;
}

nlohmann::ordered_json evaluate_checkpoint(const RunConfig& cfg, const std::string& path) {
  return evaluate_with(cfg, [&](Arena<float>& a) { load_checkpoint(path, a); });
}

nlohmann::ordered_json evaluate_with(const RunConfig& cfg, const std::function<void(Arena<float>&)>& fill) {
  configure_threads(cfg.train.threads);
  const uint64_t task_seed = uint64_t(cfg.task.seed >= 0 ? cfg.task.seed : cfg.seed);
  auto task = make_task(cfg.task, task_seed);
  const int eval_batch = int(std::min<int64_t>(cfg.train.eval_batch, std::max(cfg.task.n_val, cfg.task.n_test)));
  auto model = make_model<float>(cfg.model, eval_batch);
  if (!task->last_only() && model->last_only())
    throw UserError("model.kind: '" + cfg.model.kind + "' predicts one value per sequence, but task '" + cfg.task.kind +
                    "' has a target at every position");
  fill(model->arena);
  LossRunner runner(*model, *task, cfg.train.loss);
  nlohmann::ordered_json j;
  const EvalResult v = evaluate(runner, *task, Split::val, cfg.task.n_val, eval_batch);
  j["val_loss"] = v.loss;
  if (cfg.train.loss != "ce" && v.target_var > 0) j["val_rel"] = v.loss / v.target_var;
  if (cfg.train.loss == "ce") j["val_bits_per_byte"] = v.loss / std::log(2.0);
  add_position_losses(j, v.pos, true);
  add_probes(j, model->head_probes(8));
  if (cfg.task.n_test > 0) j["test_loss"] = evaluate(runner, *task, Split::test, cfg.task.n_test, eval_batch).loss;
  j["params_total"] = model->counts().total;
  j["attention_budget"] = model->counts().attention_budget;
  return j;
}

}  // namespace attnlab
