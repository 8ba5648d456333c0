#include "train/trainer.h"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <thread>

#include "core/error.h"
#include "core/rng.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "kernels/loss.h"
#include "models/transformer.h"
#include "tasks/task.h"
#include "train/optimizer.h"

extern "C" void openblas_set_num_threads(int);

namespace attnlab {

int configure_threads(int requested) {
  const int n = requested > 0 ? requested : int(std::max(1u, std::thread::hardware_concurrency()));
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
  return n;
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Training sample order: a fresh permutation of the training set each epoch (or, with
// n_train = 0, an endless stream of new samples). A pure function of (seed, step).
class BatchOrder {
 public:
  BatchOrder(int64_t n_train, uint64_t seed) : n_(n_train), seed_(seed) {}
  void indices(int64_t step, int B, std::vector<int64_t>& out) {
    out.resize(size_t(B));
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

struct EvalResult { double loss = 0, target_var = 0; };

// Mean loss over a whole split, in chunks of eval_batch; also the targets' variance.
EvalResult evaluate(Transformer<float>& model, const Task& task, Split split, int64_t n, int eval_batch, bool ce) {
  Batch b;
  std::vector<int64_t> idx;
  double loss_sum = 0, weight = 0, ysum = 0, y2sum = 0, ycount = 0;
  for (int64_t start = 0; start < n; start += eval_batch) {
    const int B = int(std::min<int64_t>(eval_batch, n - start));
    idx.resize(size_t(B));
    std::iota(idx.begin(), idx.end(), start);
    task.fill(split, idx.data(), B, b);
    const float* out = model.forward(b.x.empty() ? nullptr : b.x.data(), b.tokens.empty() ? nullptr : b.tokens.data(), B, b.T);
    const int N = B * b.T, D = model.out_dim();
    const double w = std::accumulate(b.mask.begin(), b.mask.end(), 0.0);
    const double l = ce ? ce_forward_backward<float>(nullptr, out, b.targets.data(), b.mask.data(), N, D)
                        : mse_forward_backward<float>(nullptr, out, b.y.data(), b.mask.data(), N, D);
    loss_sum += l * w;
    weight += w;
    if (!ce)
      for (int i = 0; i < N; ++i)
        if (b.mask[i] > 0)
          for (int j = 0; j < D; ++j) {
            const double y = b.y[size_t(i) * D + j];
            ysum += y; y2sum += y * y; ycount += 1;
          }
  }
  EvalResult r;
  r.loss = weight > 0 ? loss_sum / weight : 0;
  if (ycount > 0) r.target_var = y2sum / ycount - (ysum / ycount) * (ysum / ycount);
  return r;
}

}  // namespace

nlohmann::json train_run(const RunConfig& cfg, const TrainOutput& out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(out.dir, ec);
  if (ec) throw UserError(out.dir + ": cannot create the output directory: " + ec.message());
  write_file_atomic(out.dir + "/config.toml", out.resolved_config);

  const int threads = configure_threads(cfg.train.threads);
  const TrainConfig& tc = cfg.train;
  const uint64_t task_seed = uint64_t(cfg.task.seed >= 0 ? cfg.task.seed : cfg.seed);
  auto task = make_task(cfg.task, task_seed);
  const bool ce = tc.loss == "ce";
  const int eval_batch = int(std::min<int64_t>(tc.eval_batch, std::max(cfg.task.n_val, cfg.task.n_test)));
  Transformer<float> model(cfg.model, std::max(tc.batch, eval_batch));
  model.init(uint64_t(cfg.seed));
  std::vector<uint8_t> decay(model.arena.size(), 0);
  for (const auto& p : model.arena.params())
    if (p.decay) std::fill(decay.begin() + std::ptrdiff_t(p.offset), decay.begin() + std::ptrdiff_t(p.offset + p.size), 1);
  auto opt = make_optimizer(tc, model.arena.size(), std::move(decay));
  BatchOrder order(cfg.task.n_train, uint64_t(cfg.seed));

  std::ofstream metrics(out.dir + "/metrics.jsonl", std::ios::trunc);
  if (!metrics) throw UserError(out.dir + "/metrics.jsonl: cannot write");

  const auto t0 = Clock::now();
  double train_time = 0, window_loss = 0, last_train = NAN, last_val = NAN, min_val = INFINITY, target_var = 0;
  int64_t window_n = 0, step = 0;
  std::string status = "completed", reason;
  int64_t diverged_step = -1;
  Batch batch;
  std::vector<int64_t> idx;
  std::vector<float> dy;
  Progress prog;
  prog.steps = tc.steps;
  for (step = 0; step < tc.steps; ++step) {
    const auto ts = Clock::now();
    order.indices(step, tc.batch, idx);
    task->fill(Split::train, idx.data(), tc.batch, batch);
    const float* yhat = model.forward(batch.x.empty() ? nullptr : batch.x.data(),
                                      batch.tokens.empty() ? nullptr : batch.tokens.data(), tc.batch, batch.T);
    const int N = tc.batch * batch.T, D = model.out_dim();
    dy.resize(size_t(N) * D);
    const double loss = ce ? ce_forward_backward(dy.data(), yhat, batch.targets.data(), batch.mask.data(), N, D)
                           : mse_forward_backward(dy.data(), yhat, batch.y.data(), batch.mask.data(), N, D);
    model.arena.zero_grad();
    model.backward(dy.data());
    const double gnorm = global_norm(model.arena.grad());
    if (!std::isfinite(loss) || !std::isfinite(gnorm)) {
      status = "diverged";
      diverged_step = step;
      reason = !std::isfinite(loss) ? "training loss is not finite" : "gradient norm is not finite";
      break;
    }
    if (tc.grad_clip > 0 && gnorm > tc.grad_clip) {
      const float s = float(tc.grad_clip / gnorm);
      for (float& g : model.arena.grad()) g *= s;
    }
    const double lr = scheduled_lr(tc, step);
    opt->step(model.arena.data(), model.arena.grad(), lr);
    train_time += seconds_since(ts);
    window_loss += loss;
    ++window_n;

    prog.step = step + 1;
    prog.train_loss = loss;
    prog.elapsed_s = seconds_since(t0);
    prog.tokens_per_s = double(prog.step) * tc.batch * batch.T / std::max(train_time, 1e-9);
    prog.evaluated = false;
    if ((step + 1) % tc.eval_every == 0 || step + 1 == tc.steps) {
      const EvalResult ev = evaluate(model, *task, Split::val, cfg.task.n_val, eval_batch, ce);
      last_train = window_loss / double(window_n);
      last_val = ev.loss;
      target_var = ev.target_var;
      min_val = std::min(min_val, last_val);
      window_loss = 0;
      window_n = 0;
      nlohmann::ordered_json line{{"step", step + 1}, {"train_loss", last_train}, {"val_loss", last_val},
                                  {"lr", lr}, {"grad_norm", gnorm}, {"wall_s", seconds_since(t0)}};
      metrics << line.dump() << "\n" << std::flush;
      prog.val_loss = last_val;
      prog.evaluated = true;
    }
    if (out.on_progress) out.on_progress(prog);
  }

  const auto pc = model.counts();
  nlohmann::ordered_json s;
  s["status"] = status;
  if (status == "diverged") {
    s["diverged_step"] = diverged_step;
    s["diverged_reason"] = reason;
  }
  s["final_train_loss"] = std::isfinite(last_train) ? nlohmann::ordered_json(last_train) : nlohmann::ordered_json();
  s["final_val_loss"] = std::isfinite(last_val) ? nlohmann::ordered_json(last_val) : nlohmann::ordered_json();
  s["min_val_loss"] = std::isfinite(min_val) ? nlohmann::ordered_json(min_val) : nlohmann::ordered_json();
  if (!ce && target_var > 0 && std::isfinite(last_val)) {
    s["val_target_var"] = target_var;
    s["final_val_rel"] = last_val / target_var;  // fraction of the target's variance left unexplained
  }
  if (cfg.task.n_test > 0 && status == "completed")
    s["test_loss"] = evaluate(model, *task, Split::test, cfg.task.n_test, eval_batch, ce).loss;
  s["params_total"] = pc.total;
  s["params_attention"] = pc.attention;
  s["attention_budget"] = pc.attention_budget;
  s["steps"] = step;
  s["wall_s"] = seconds_since(t0);
  s["train_s"] = train_time;
  s["tokens_per_s"] = train_time > 0 ? double(step) * tc.batch * cfg.task.seq_len / train_time : 0.0;
  s["threads"] = threads;
  if (status == "completed") save_checkpoint(out.dir + "/model.safetensors", model.arena, out.resolved_config);
  write_file_atomic(out.dir + "/summary.json", s.dump(2) + "\n");
  return nlohmann::json::parse(s.dump());
}

}  // namespace attnlab
