#include "train/bench.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>

#include "core/error.h"
#include "core/profile.h"
#include "kernels/fma_peak.h"
#include "kernels/gemm.h"
#include "kernels/loss.h"
#include "models/model.h"
#include "tasks/task.h"
#include "train/optimizer.h"
#include "train/projection.h"
#include "train/trainer.h"

namespace attnlab {

// Forward FLOPs of one sequence of the Transformer (causal attention counts (T+1)/2 keys).
double transformer_forward_flops(const ModelConfig& m, int T) {
  const double C = m.d_model, Te = (T + 1) / 2.0;
  double f = 2.0 * m.d_in * C + 2.0 * C * m.d_out;
  for (int l = 0; l < m.layers; ++l) {
    const double qk = m.dot_product ? qk_width(m, l) : 0.0, vd = v_width(m, l), F = m.ffn[l];  // DP-free: no q, k
    f += 2.0 * C * (2 * qk + vd) + 2.0 * vd * C;  // q, k, v, o projections
    f += 2.0 * Te * (qk + vd);                    // scores and P V (sum over heads of d_k + d_v)
    f += 4.0 * C * F;                                        // FFN
  }
  return f * T;
}

namespace {
double shallow_forward_flops(const ModelConfig& m, int T);
}  // namespace

double estimated_run_flops(const RunConfig& c) {
  const ModelConfig& m = c.model;
  const int T = c.task.seq_len;
  double fwd = 0;  // one sequence
  if (m.kind == "transformer") fwd = transformer_forward_flops(m, T);
  else if (m.kind == "shallow_attention") fwd = shallow_forward_flops(m, T);
  else if (m.kind == "lstm") fwd = 8.0 * T * m.width * (m.width + m.d_in);
  else fwd = 2.0 * T * m.width * (m.width + m.d_in);  // rnn, indrnn (at most)
  return 3.0 * fwd * double(c.train.batch) * double(c.train.steps);
}

namespace {

double shallow_forward_flops(const ModelConfig& m, int T) {
  const double d = m.d_in, n = m.width;
  return n * (2 * d * d + 4.0 * T * d + 2 * d);
}

BenchCase transformer_case(const std::string& name, int C, int L, std::vector<int> heads, std::vector<int> dims, int T,
                           int B) {
  BenchCase b;
  b.name = name;
  RunConfig& c = b.cfg;
  c.task.kind = "sparse_memory";
  c.task.seq_len = T;
  c.task.d_in = 4;
  c.task.lags = {1, T / 4, T / 2};
  c.task.n_train = 0;  // fresh samples
  c.task.n_val = 1;
  ModelConfig& m = c.model;
  m.d_model = C;
  m.layers = L;
  m.heads = heads;
  for (int l = 0; l < L; ++l) m.head_dim.push_back(std::vector<int>(size_t(heads[size_t(l)]), dims[size_t(l)]));
  m.value_dim = m.head_dim;
  m.ffn.assign(size_t(L), 4 * C);
  m.norm = Norm::layer;
  m.d_in = 4;
  m.d_out = 1;
  m.max_len = T;
  c.train.batch = B;
  c.train.optimizer = "adamw";
  c.train.lr = 1e-4;
  b.flops_per_step = 3.0 * transformer_forward_flops(m, T) * B;
  return b;
}

}  // namespace

std::vector<BenchCase> reference_benchmarks() {
  std::vector<BenchCase> v;
  v.push_back(transformer_case("tiny", 64, 2, {4, 4}, {16, 16}, 64, 64));
  v.push_back(transformer_case("small", 128, 4, {4, 4, 4, 4}, {32, 32, 32, 32}, 256, 32));
  v.push_back(transformer_case("medium", 256, 4, {8, 8, 8, 8}, {32, 32, 32, 32}, 256, 16));
  v.push_back(transformer_case("long", 128, 2, {4, 4}, {32, 32}, 1024, 8));
  v.push_back(transformer_case("hetero", 128, 4, {8, 8, 4, 2}, {16, 16, 8, 8}, 256, 32));
  {  // paper 2's shape: one DP-free layer, log-type bias, 8 heads of dimension 4, no FFN
    BenchCase p = transformer_case("p2", 32, 1, {8}, {4}, 256, 64);
    p.cfg.model.ffn = {0};
    p.cfg.model.dot_product = false;
    p.cfg.model.rpe = Rpe::log;
    p.cfg.model.pos = Pos::none;
    p.flops_per_step = 3.0 * transformer_forward_flops(p.cfg.model, 256) * 64;
    v.push_back(p);
  }
  BenchCase s;
  s.name = "shallow";
  RunConfig& c = s.cfg;
  c.task.kind = "teacher_student_model";
  c.task.d_in = 8;
  c.task.seq_len = 16;
  c.task.n_train = 4000;
  c.task.n_val = 1;
  c.task.teacher_width = 64;
  c.model.kind = "shallow_attention";
  c.model.width = 256;
  c.model.d_in = 8;
  c.model.max_len = 16;
  c.train.optimizer = "projected_gd";
  c.train.batch = 4000;
  c.train.rho = {3, 3, 3};
  c.train.lr = 0.03;
  s.flops_per_step = 3.0 * shallow_forward_flops(c.model, 16) * 4000;
  v.push_back(s);
  return v;
}

// In a child process, like the benchmarks: libgomp does not survive a fork once its thread
// pool exists, so the parent never runs OpenMP code.
namespace {
struct PeakWire { double fma = 0, sgemm = 0; int bits = 0; };

PeakWire machine_peak_here(int threads) {
  configure_threads(threads);
  PeakWire w;
  const FmaPeak f = measure_fma_peak(threads);
  w.bits = f.vector_bits;
  // SGEMM the way attnlab calls it: kernels/gemm.h's per-thread split of C.
  const int n = 2048;
  std::vector<float> a(size_t(n) * n, 0.5f), b(size_t(n) * n, 0.25f), c(size_t(n) * n);
  gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);  // warm up
  for (int r = 0; r < 3; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    w.sgemm = std::max(w.sgemm, 2.0 * n * n * double(n) / s / 1e9);
  }
  // The machine's speed drifts over seconds (a shared VM): the FMA loop runs again after the
  // SGEMM and the faster of the two counts, so that the peak is not taken in a slow moment.
  w.fma = std::max(f.gflops, measure_fma_peak(threads).gflops);
  return w;
}
}  // namespace

MachinePeak measure_machine_peak(int threads) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    const PeakWire w = machine_peak_here(threads);
    (void)!write(fds[1], &w, sizeof w);
    _exit(0);
  }
  close(fds[1]);
  PeakWire w;
  const bool ok = read(fds[0], &w, sizeof w) == ssize_t(sizeof w);
  close(fds[0]);
  waitpid(pid, nullptr, 0);
  if (!ok || w.fma <= 0) throw std::runtime_error("bench: the peak measurement failed");
  MachinePeak p;
  p.fma_gflops = w.fma;
  p.sgemm_gflops = w.sgemm;
  p.vector_bits = w.bits;
  p.isa = w.bits == 512 ? "avx512f" : w.bits == 256 ? "avx2+fma" : "sse";
  return p;
}

BenchStep::BenchStep(const RunConfig& c) : cfg_(c) {
  task_ = make_task(c.task, 1);
  model_ = make_model<float>(c.model, c.train.batch);
  model_->init(1);
  if (task_->last_only() && !model_->last_only())
    throw std::logic_error("bench: per-sequence task with a per-position model");
  opt_ = make_optimizer(c.train, model_->arena.size(), std::vector<uint8_t>(model_->arena.size(), 1));
  if (!c.train.rho.empty()) {  // projected GD: the trainer's projection onto the heads' balls
    theta0_.assign(model_->arena.data().begin(), model_->arena.data().end());
    slices_ = model_->head_slices();
  }
  const int P = model_->last_only() ? 1 : c.task.seq_len;
  dy_.resize(size_t(c.train.batch) * P * model_->out_dim());
}

BenchStep::~BenchStep() = default;

void BenchStep::fill(int64_t first) {
  const int B = cfg_.train.batch;
  idx_.resize(size_t(B));
  for (int j = 0; j < B; ++j) idx_[size_t(j)] = cfg_.task.n_train > 0 ? j : first + j;
  task_->fill(Split::train, idx_.data(), B, batch_);
}

void BenchStep::run() {
  const int B = cfg_.train.batch, T = cfg_.task.seq_len;
  // The Transformer profiles its own phases; the other models are timed whole.
  const bool whole = cfg_.model.kind != "transformer";
  std::optional<prof::Scope> fwd;
  if (whole) fwd.emplace("forward");
  const float* out = model_->forward(batch_.x.data(), nullptr, B, T);
  fwd.reset();
  const int P = model_->last_only() ? 1 : T;
  {
    PROFILE_SCOPE("loss");
    mse_forward_backward(dy_.data(), out, batch_.y.data(), batch_.mask.data(), B * P, model_->out_dim());
  }
  { PROFILE_SCOPE("zero_grad"); model_->arena.zero_grad(); }
  {
    std::optional<prof::Scope> bwd;
    if (whole) bwd.emplace("backward");
    model_->backward(dy_.data());
  }
  {
    PROFILE_SCOPE("optimizer");
    opt_->step(model_->arena.data(), model_->arena.grad(), cfg_.train.lr);
    if (!slices_.empty()) project_heads<float>(model_->arena.data(), theta0_, slices_, cfg_.train.rho, cfg_.model.width);
  }
}

BenchResult run_benchmark(const BenchCase& bc, int warmup, int steps, int threads) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    double ms = 0;
    try {
      configure_threads(threads);
      BenchStep step(bc.cfg);
      std::vector<double> times;
      for (int s = 0; s < warmup + steps; ++s) {
        if (s == 0 || bc.cfg.task.n_train == 0) step.fill(int64_t(s) * bc.cfg.train.batch);  // data: not timed
        const auto t0 = std::chrono::steady_clock::now();
        step.run();
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (s >= warmup) times.push_back(dt);
        if (s + 1 == warmup) prof::reset();
      }
      if (prof::enabled) {
        std::fprintf(stderr, "profile of %s (%d steps, %d threads):\n", bc.name.c_str(), steps, threads);
        prof::print(stderr, steps);
      }
      std::sort(times.begin(), times.end());
      ms = 1000.0 * times[times.size() / 2];  // median step
    } catch (const std::exception& e) {
      ms = -1;
    }
    (void)!write(fds[1], &ms, sizeof ms);
    _exit(0);
  }
  close(fds[1]);
  double ms = -1;
  (void)!read(fds[0], &ms, sizeof ms);
  close(fds[0]);
  int st = 0;
  struct rusage ru {};
  wait4(pid, &st, 0, &ru);
  if (ms <= 0) throw std::runtime_error("benchmark '" + bc.name + "' failed");
  BenchResult r;
  r.model = bc.name;
  r.ms_per_step = ms;
  r.tokens_per_s = double(bc.cfg.train.batch) * bc.cfg.task.seq_len / (ms / 1000.0);
  r.gflops = bc.flops_per_step / (ms / 1000.0) / 1e9;
  r.peak_rss_mb = double(ru.ru_maxrss) / 1024.0;
  return r;
}

}  // namespace attnlab
