#include "train/trainer.h"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <thread>

#include "core/dist.h"
#include "core/error.h"
#include "core/rng.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "kernels/loss.h"
#include "models/model.h"
#include "tasks/task.h"
#include "train/best_fit.h"
#include "train/error_probe.h"
#include "tasks/teacher_student.h"
#include "train/convergence.h"
#include "train/evaluate.h"
#include "train/optimizer.h"
#include "train/projection.h"
#include "train/train_state.h"

extern "C" void openblas_set_num_threads(int);

namespace attnlab {

int configure_threads(int requested) {
  // The cores this process may use (a Slurm allocation, an MPI rank's share of its node).
  const int n = requested > 0 ? requested : dist::usable_cores();
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
  return n;
}

bool full_batch(const TrainConfig& tc) { return tc.optimizer == "gd" || tc.optimizer == "projected_gd"; }

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Training sample order: a fresh permutation of the training set each epoch (or, with
// n_train = 0, an endless stream of new samples). A pure function of (seed, step).
class BatchOrder {
 public:
  BatchOrder(int64_t n_train, uint64_t seed) : n_(n_train), seed_(seed) {}
  void indices(int64_t step, int B, bool full, std::vector<int64_t>& out) {
    out.resize(size_t(B));
    if (full) { std::iota(out.begin(), out.end(), int64_t(0)); return; }
    for (int j = 0; j < B; ++j) {
      const int64_t pos = step * B + j;
      if (n_ == 0) { out[j] = pos; continue; }
      const int64_t epoch = pos / n_;
      if (epoch != epoch_) shuffle(epoch);
      out[j] = perm_[size_t(pos % n_)];
    }
  }

 private:
  void shuffle(int64_t epoch) {
    perm_.resize(size_t(n_));
    std::iota(perm_.begin(), perm_.end(), int64_t(0));
    const uint64_t stream = stream_id("batch_order") + uint64_t(epoch);
    for (int64_t i = n_ - 1; i > 0; --i) std::swap(perm_[size_t(i)], perm_[rng_below(seed_, stream, uint64_t(i), uint64_t(i + 1))]);
    epoch_ = epoch;
  }
  int64_t n_;
  uint64_t seed_;
  int64_t epoch_ = -1;
  std::vector<int64_t> perm_;
};

nlohmann::ordered_json num(double v) { return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(); }

// Keeps the lines of DIR/metrics.jsonl up to `step` (a killed run may have written lines
// past its last checkpoint, and a last line in part), rewritten atomically.
void truncate_metrics(const std::string& path, int64_t step) {
  std::ifstream in(path);
  std::string kept, line;
  while (std::getline(in, line)) {
    if (!in) break;  // a last line without its newline was cut by the kill
    try {
      const auto j = nlohmann::json::parse(line);
      if (j.at("step").get<int64_t>() > step) break;
    } catch (const nlohmann::json::exception&) {
      break;
    }
    kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

}  // namespace

std::string checkpoint_path(const std::string& dir) { return dir + "/checkpoint.safetensors"; }

nlohmann::json train_run(const RunConfig& cfg, const TrainOutput& out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string ckpt = checkpoint_path(out.dir);
  const int threads = configure_threads(cfg.train.threads);
  const TrainConfig& tc = cfg.train;
  const uint64_t task_seed = uint64_t(cfg.task.seed >= 0 ? cfg.task.seed : cfg.seed);
  auto task = make_task(cfg.task, task_seed);
  const bool full = full_batch(tc);
  const int batch = full ? int(cfg.task.n_train) : tc.batch;
  const int eval_batch = int(std::min<int64_t>(tc.eval_batch, std::max(cfg.task.n_val, cfg.task.n_test)));
  // Data parallel over the ranks of an MPI job: rank r trains on rows [lo, hi) of every global
  // batch (of the whole training set for full-batch GD), the gradients are summed over ranks
  // each step weighted by each rank's share of the loss's positions, so every rank takes the
  // same step as one process with the global batch would. Rank 0 writes every file.
  const int ranks = dist::size(), rank = dist::rank();
  const bool lead = rank == 0;
  if (ranks > 1 && batch < ranks)
    throw UserError(std::string(full ? "task.n_train" : "train.batch") + ": " + std::to_string(batch) + " rows cannot be split over " +
                    std::to_string(ranks) + " MPI ranks (fewer rows than ranks)");
  const int lo = int(int64_t(batch) * rank / ranks), local = int(int64_t(batch) * (rank + 1) / ranks) - lo;
  auto model = make_model<float>(cfg.model, std::max({local, eval_batch, full ? eval_batch : 0}));
  if (task->last_only() == false && model->last_only())
    throw UserError("model.kind: '" + cfg.model.kind + "' predicts one value per sequence, but task '" + cfg.task.kind +
                    "' has a target at every position");
  model->init(uint64_t(cfg.seed));
  Arena<float>& arena = model->arena;
  std::vector<uint8_t> decay(arena.size(), 0);
  for (const auto& p : arena.params())
    if (p.decay) std::fill(decay.begin() + std::ptrdiff_t(p.offset), decay.begin() + std::ptrdiff_t(p.offset + p.size), 1);
  auto opt = make_optimizer(tc, arena.size(), std::move(decay));
  const auto slices = model->head_slices();
  if (!tc.rho.empty() && slices.empty())
    throw UserError("train.rho: projection needs a model with per-head parameters (shallow_attention, indrnn, rnn, lstm), not '" +
                    cfg.model.kind + "'");
  const auto groups = model->probe_groups();
  TrainState st;
  if (!tc.rho.empty()) st.theta0.assign(arena.data().begin(), arena.data().end());
  st.avg.assign(arena.size(), 0.0);
  st.gmax_window.assign(groups.size(), 0.0);
  st.gmax_all.assign(groups.size(), 0.0);
  // The authors' gradient statistic (paper 3, E4): the steps cut into blocks of grad_block,
  // each block's largest norm, averaged over the blocks (a last partial block counts).
  // Index groups.size() is the global norm.
  st.block_max.assign(groups.size() + 1, 0.0);
  st.block_sum.assign(groups.size() + 1, 0.0);
  st.block_first.assign(groups.size() + 1, 0.0);
  st.block_last.assign(groups.size() + 1, 0.0);
  if (out.resume) {
    load_train_state(ckpt, st, arena, *opt);
    if (st.step > tc.steps)
      throw UserError(ckpt + ": is at step " + std::to_string(st.step) + ", beyond train.steps = " + std::to_string(tc.steps));
    if (lead) truncate_metrics(out.dir + "/metrics.jsonl", st.step);
    if (out.on_resume) out.on_resume(st.step);
  }
  // Everything is checked: only now the output directory is touched (bad input leaves none).
  if (lead) {
    fs::create_directories(out.dir, ec);
    if (ec) throw UserError(out.dir + ": cannot create the output directory: " + ec.message());
    if (!out.resume) {
      fs::remove(ckpt, ec);  // a fresh run never continues another's state
      fs::remove(out.dir + "/summary.json", ec);
      fs::remove(out.dir + "/model.safetensors", ec);
    }
    write_file_atomic(out.dir + "/config.toml", out.resolved_config);
  }
  BatchOrder order(cfg.task.n_train, uint64_t(cfg.seed));
  LossRunner runner(*model, *task, tc.loss);
  std::vector<double> gnow(groups.size(), 0.0);

  std::ofstream metrics;
  uintmax_t metrics_bytes = 0;
  if (lead) {
    metrics.open(out.dir + "/metrics.jsonl", out.resume ? std::ios::app : std::ios::trunc);
    if (!metrics) throw UserError(out.dir + "/metrics.jsonl: cannot write");
    metrics.seekp(0, std::ios::end);
    metrics_bytes = uintmax_t(metrics.tellp());
  }

  const auto t0 = Clock::now();
  const int64_t val_every = tc.val_every > 0 ? tc.val_every : tc.eval_every;
  const int64_t ckpt_every = tc.checkpoint_every > 0 ? tc.checkpoint_every : tc.eval_every;
  EvalCache val_cache;
  std::string status = "completed", reason;
  int64_t diverged_step = -1;
  Batch b;
  std::vector<int64_t> idx;
  Progress prog;
  prog.steps = tc.steps;
  constexpr int kProbeSeqs = 8;
  if (full) {  // the whole training set is one batch: make it once
    order.indices(0, batch, true, idx);
    task->fill(Split::train, idx.data() + lo, local, b);
  }
  int64_t step = st.step;
  for (; step < tc.steps; ++step) {
    const auto ts = Clock::now();
    if (!full) {
      order.indices(step, batch, false, idx);
      task->fill(Split::train, idx.data() + lo, local, b);
    }
    double loss = runner.run(b, true);
    if (ranks > 1) {  // the global batch's mean loss and gradient
      double lw[2] = {0, std::accumulate(b.mask.begin(), b.mask.end(), 0.0)};
      lw[0] = loss * lw[1];
      const double mine = lw[1];
      dist::allreduce_sum(lw, 2);
      const float share = float(lw[1] > 0 ? mine / lw[1] : 1.0 / ranks);
      for (float& g : arena.grad()) g *= share;
      dist::allreduce_sum(arena.grad().data(), arena.grad().size());
      loss = lw[1] > 0 ? lw[0] / lw[1] : lw[0];
    }
    const double gnorm = global_norm(arena.grad());
    if (step == 0) st.first_loss = loss;
    const bool exploded = loss > 1.0 && loss > 1e4 * st.first_loss;
    if (!std::isfinite(loss) || !std::isfinite(gnorm) || exploded) {
      status = "diverged";
      diverged_step = step;
      reason = !std::isfinite(loss) ? "training loss is not finite"
               : exploded           ? "training loss exploded (above 1 and 1e4 times the first step's)"
                                    : "gradient norm is not finite";
      break;
    }
    st.max_gnorm = std::max(st.max_gnorm, gnorm);
    for (size_t g = 0; g < groups.size(); ++g) {
      double s = 0;
      for (int id : groups[g].second)
        for (size_t j = 0; j < arena.info(id).size; ++j) s += double(arena.g(id)[j]) * arena.g(id)[j];
      gnow[g] = std::sqrt(s);
      st.gmax_window[g] = std::max(st.gmax_window[g], gnow[g]);
      st.gmax_all[g] = std::max(st.gmax_all[g], gnow[g]);
      st.block_max[g] = std::max(st.block_max[g], gnow[g]);
    }
    st.block_max.back() = std::max(st.block_max.back(), gnorm);
    if ((step + 1) % tc.grad_block == 0) {
      for (size_t g = 0; g < st.block_max.size(); ++g) st.block_sum[g] += st.block_max[g];
      if (st.blocks == 0) st.block_first = st.block_max;
      st.block_last = st.block_max;
      std::fill(st.block_max.begin(), st.block_max.end(), 0.0);
      ++st.blocks;
    }
    if (tc.grad_clip > 0 && gnorm > tc.grad_clip) {
      const float s = float(tc.grad_clip / gnorm);
      for (float& g : arena.grad()) g *= s;
    }
    const double lr = scheduled_lr(tc, step);
    opt->step(arena.data(), arena.grad(), lr);
    if (!tc.rho.empty() && project_heads<float>(arena.data(), st.theta0, slices, tc.rho, cfg.model.width) > 0 &&
        st.proj_active >= 0)
      ++st.proj_active;
    {
      const double k = 1.0 / double(step + 1);
      auto p = arena.data();
      for (size_t j = 0; j < st.avg.size(); ++j) st.avg[j] += (double(p[j]) - st.avg[j]) * k;
    }
    st.train_time += seconds_since(ts);
    st.window_loss += loss;
    ++st.window_n;
    st.min_train = std::min(st.min_train, loss);

    prog.step = step + 1;
    prog.train_loss = loss;
    prog.elapsed_s = seconds_since(t0);
    prog.tokens_per_s = double(prog.step) * batch * b.T / std::max(st.train_time, 1e-9);
    prog.evaluated = false;
    const bool eval_now = (step + 1) % tc.eval_every == 0 || step + 1 == tc.steps;
    double val_now = NAN;
    std::vector<double> pos_now;  // the validation loss by position (per-position tasks)
    const bool val_pass = eval_now || (step + 1) % val_every == 0;
    if (val_pass) {  // the validation loss after this update
      const EvalResult ev = evaluate(runner, *task, Split::val, cfg.task.n_val, eval_batch, &val_cache, ranks > 1);
      val_now = ev.loss;
      pos_now = ev.pos;
      st.target_var = ev.target_var;
      if (val_now < st.min_val) { st.min_val = val_now; st.best_val_step = step + 1; }
    }
    if (eval_now) {
      st.last_train = st.window_loss / double(st.window_n);
      st.last_val = val_now;
      st.window_loss = 0;
      st.window_n = 0;
      nlohmann::ordered_json line{{"step", step + 1}, {"train_loss", st.last_train}, {"val_loss", st.last_val},
                                  {"lr", lr}, {"grad_norm", gnorm}};
      for (size_t g = 0; g < groups.size(); ++g) {
        line["grad_norm." + groups[g].first] = gnow[g];
        line["grad_norm_max." + groups[g].first] = st.gmax_window[g];
      }
      if (const double h = model->attention_entropy(); std::isfinite(h)) line["attn_entropy"] = h;
      // over the last validation chunk's first sequences
      st.probes = nlohmann::ordered_json::object();
      if (lead) add_probes(st.probes, model->head_probes(kProbeSeqs));  // rank 0 ran the last validation chunk
      add_position_losses(st.probes, pos_now, false);  // kept with the probes: the summary takes the last ones
      for (auto it = st.probes.begin(); it != st.probes.end(); ++it) line[it.key()] = *it;
      line["wall_s"] = seconds_since(t0);
      if (lead) metrics << line.dump() << "\n" << std::flush;
      if (lead && !metrics) {  // cut the file back to its last whole line: a resumed run continues from there
        metrics.close();
        fs::resize_file(out.dir + "/metrics.jsonl", metrics_bytes, ec);
        throw UserError(out.dir + "/metrics.jsonl: write failed (disk full?)");
      }
      if (lead) metrics_bytes = uintmax_t(metrics.tellp());
      std::fill(st.gmax_window.begin(), st.gmax_window.end(), 0.0);  // windows of eval_every steps
      prog.val_loss = st.last_val;
      prog.evaluated = true;
    }
    if (out.on_progress) out.on_progress(prog);
    if (val_pass && !std::isfinite(val_now)) {  // this step's update blew the parameters up
      status = "diverged";
      diverged_step = ++step;  // the step count whose iterate is not finite, as in metrics.jsonl
      reason = "validation loss is not finite";
      break;
    }
    if ((step + 1) % ckpt_every == 0 || step + 1 == tc.steps) {  // after the metrics line of this step
      st.step = step + 1;
      // Every rank holds the same parameters (the same summed gradient, the same update);
      // rank 0's are sent to all at each checkpoint all the same, so that no rounding of the
      // reduction could ever let them drift apart.
      dist::broadcast(arena.data().data(), arena.size());
      if (lead) save_train_state(ckpt, st, arena, *opt, out.resolved_config);
    }
  }
  st.step = step;

  const auto pc = model->counts();
  nlohmann::ordered_json s;
  if (tc.probe_errors && lead) {  // paper 3's E2/E3 errors of this width, at initialization
    const auto e = p3_error_decomposition(cfg, {cfg.model.width}, 0, dynamic_cast<const TeacherStudentTask*>(task.get()))[0];  // all n inputs
    s["approx_error_max"] = e.approx_max;
    s["approx_error_mean"] = e.approx_mean;
    s["lin_error_max"] = e.lin_max;
    s["lin_error_mean"] = e.lin_mean;
  }
  if (tc.best_fit && lead) {  // the least error of this model's class on this target (paper 2's rates)
    LagTarget target;
    if (task->lag_target(target)) s["best_fit_rel"] = best_fit(target, cfg.model.rpe == Rpe::log, cfg.model.heads.at(0)).rel;
  }
  s["status"] = status;
  if (status == "diverged") {
    s["diverged_step"] = diverged_step;
    s["diverged_reason"] = reason;
  }
  s["final_train_loss"] = num(st.last_train);
  s["final_val_loss"] = num(st.last_val);
  s["min_val_loss"] = num(st.min_val);
  s["min_train_loss"] = num(st.min_train);
  if (st.best_val_step > 0) s["best_val_step"] = st.best_val_step;
  if (tc.loss == "ce") {  // token tasks: cross-entropy in nats, and in bits per token (byte for text_lm)
    s["final_val_bits_per_byte"] = num(st.last_val / std::log(2.0));
    s["min_val_bits_per_byte"] = num(st.min_val / std::log(2.0));
  }
  if (tc.loss != "ce" && st.target_var > 0 && std::isfinite(st.last_val)) {
    s["val_target_var"] = st.target_var;
    s["final_val_rel"] = st.last_val / st.target_var;  // fraction of the target's variance left unexplained
    s["min_train_rel"] = num(st.min_train / st.target_var);  // the same for the minimum training loss
  }
  if (!tc.rho.empty() && step > 0)  // how often the projection was active (paper 3's radius rho at work)
    s["proj_active_frac"] = num(st.proj_active >= 0 ? double(st.proj_active) / double(step) : NAN);
  if (status == "completed" && full) {
    // The averaged iterate (what paper 3's theory bounds for full-batch GD), evaluated on the
    // training and validation sets. Not for minibatch optimizers: there no theorem speaks of it,
    // and one pass over a large training set (8192 text sequences) cost a sixth of a short run.
    std::vector<float> last(arena.data().begin(), arena.data().end());
    for (size_t j = 0; j < st.avg.size(); ++j) arena.data()[j] = float(st.avg[j]);
    s["avg_iterate_train_loss"] = num(evaluate(runner, *task, Split::train, cfg.task.n_train > 0 ? cfg.task.n_train : cfg.task.n_val, eval_batch, nullptr, ranks > 1).loss);
    s["avg_iterate_val_loss"] = num(evaluate(runner, *task, Split::val, cfg.task.n_val, eval_batch, nullptr, ranks > 1).loss);
    std::copy(last.begin(), last.end(), arena.data().begin());
  }
  if (status == "completed") {
    if (cfg.task.n_test > 0) s["test_loss"] = num(evaluate(runner, *task, Split::test, cfg.task.n_test, eval_batch, nullptr, ranks > 1).loss);
  }
  for (auto it = st.probes.begin(); it != st.probes.end(); ++it) s[it.key()] = *it;
  s["max_grad_norm"] = st.max_gnorm;  // global norm, over every step
  for (size_t g = 0; g < groups.size(); ++g) s["max_grad_norm." + groups[g].first] = st.gmax_all[g];
  if (step % tc.grad_block != 0) {  // the last, partial block
    for (size_t g = 0; g < st.block_max.size(); ++g) st.block_sum[g] += st.block_max[g];
    if (st.blocks == 0) st.block_first = st.block_max;
    st.block_last = st.block_max;
    ++st.blocks;
  }
  if (st.blocks > 0) {
    s["block_max_grad_norm"] = st.block_sum.back() / double(st.blocks);
    for (size_t g = 0; g < groups.size(); ++g) s["block_max_grad_norm." + groups[g].first] = st.block_sum[g] / double(st.blocks);
    // The first block (steps 0 .. grad_block - 1) and the last one apart: whether a statistic's
    // growth is there from the start (the input's geometry) or comes with training.
    s["block_first_grad_norm"] = num(st.block_first.back());
    s["block_last_grad_norm"] = num(st.block_last.back());
    for (size_t g = 0; g < groups.size(); ++g) {
      s["block_first_grad_norm." + groups[g].first] = num(st.block_first[g]);
      s["block_last_grad_norm." + groups[g].first] = num(st.block_last[g]);
    }
  }
  if (lead) {  // whether the validation loss had stopped falling (train/convergence.h)
    const Convergence cv = convergence_of_metrics(out.dir + "/metrics.jsonl", step);
    s["final_slope"] = num(cv.final_slope);
    s["converged"] = status == "completed" && cv.converged;
  }
  s["params_total"] = pc.total;
  s["params_attention"] = pc.attention;
  s["attention_budget"] = pc.attention_budget;
  s["steps"] = step;
  s["wall_s"] = seconds_since(t0);
  s["train_s"] = st.train_time;
  s["tokens_per_s"] = st.train_time > 0 ? double(step) * batch * cfg.task.seq_len / st.train_time : 0.0;
  s["ms_per_step"] = step > 0 ? 1000.0 * st.train_time / double(step) : 0.0;
  s["threads"] = threads;
  if (ranks > 1) s["ranks"] = ranks;  // MPI ranks, each with `threads` threads
  if (lead) {
    if (status == "completed") save_checkpoint(out.dir + "/model.safetensors", arena, out.resolved_config);
    write_file_atomic(out.dir + "/summary.json", s.dump(2) + "\n");
    // A completed run's state is model.safetensors; a diverged run keeps its last good checkpoint.
    if (status == "completed") fs::remove(ckpt, ec);
  }
  return nlohmann::json::parse(s.dump());
}

}  // namespace attnlab
