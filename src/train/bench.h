#pragma once
// The reference benchmark set of `attnlab bench`: fixed models trained for a few steps with
// AdamW and MSE on sparse_memory (the shallow model: full-batch GD on teacher_student_model),
// each in its own child process so that its peak memory is its own.
#include <memory>
#include <string>
#include <vector>

#include "core/run_config.h"
#include "models/model.h"
#include "tasks/task.h"
#include "train/optimizer.h"

namespace attnlab {

struct BenchCase {
  std::string name;
  RunConfig cfg;
  double flops_per_step = 0;  // analytic: 3x the forward pass (forward + backward)
};

struct BenchResult {
  std::string model;
  double tokens_per_s = 0, ms_per_step = 0, gflops = 0, peak_fraction = 0, peak_rss_mb = 0;  // peak_fraction: of the FMA peak
};

// One reference case's training step on a fixed batch: forward, MSE, zero_grad, backward,
// optimizer (and the projection of projected GD). What `attnlab bench` times and the no-allocation test counts.
class BenchStep {
 public:
  explicit BenchStep(const RunConfig& c);
  ~BenchStep();
  // A new batch: sample indices first.. (or 0.. when the task has a fixed training set).
  void fill(int64_t first);
  void run();

 private:
  RunConfig cfg_;
  std::unique_ptr<Task> task_;
  std::unique_ptr<Model<float>> model_;
  std::unique_ptr<Optimizer> opt_;
  std::vector<int64_t> idx_;
  Batch batch_;
  std::vector<float> dy_, theta0_;
  std::vector<HeadSlice> slices_;  // projected GD (train.rho): the heads projected after each step
};

// tiny, small, medium, long, hetero, shallow (README, "Benchmarks").
std::vector<BenchCase> reference_benchmarks();
// Runs `steps` timed steps (after `warmup`) of one case in a child process. The calling
// process must not have run OpenMP code yet (libgomp does not survive fork).
BenchResult run_benchmark(const BenchCase& c, int warmup, int steps, int threads);
// The machine's roofline, measured now in a child process with the given threads: the FMA
// peak (kernels/fma_peak.h; what peak_fraction is against) and the SGEMM throughput at
// n = 2048 through kernels/gemm.h (attnlab's own per-thread split).
struct MachinePeak {
  double fma_gflops = 0, sgemm_gflops = 0;
  int vector_bits = 0;
  std::string isa;
};
MachinePeak measure_machine_peak(int threads);

// Forward FLOPs of one sequence of length T through the Transformer (causal attention counts
// (T+1)/2 keys per query): what `attnlab compress` reports as saved.
double transformer_forward_flops(const ModelConfig& m, int T);
// A whole run's training FLOPs, roughly (3x the forward per sample and step): what a sweep
// orders its runs by, so that the longest start first.
double estimated_run_flops(const RunConfig& c);

}  // namespace attnlab
