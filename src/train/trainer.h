#pragma once
// The training loop of one run: model + task + optimizer -> metrics.jsonl, summary.json and
// model.safetensors in an output directory.
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "core/run_config.h"

namespace attnlab {

struct Progress {
  int64_t step = 0, steps = 0;
  double train_loss = 0, val_loss = 0, tokens_per_s = 0, elapsed_s = 0;
  bool evaluated = false;  // val_loss is fresh
};

struct TrainOutput {
  std::string dir;                 // files go here (created if missing)
  std::string resolved_config;     // written as DIR/config.toml and into the checkpoint
  std::function<void(const Progress&)> on_progress;  // called after every step (may be empty)
  // Continue from DIR/checkpoint.safetensors (written every train.checkpoint_every steps, or
  // at each evaluation): the result is the uninterrupted run's, timings aside.
  bool resume = false;
  std::function<void(int64_t step)> on_resume;  // called with the checkpoint's step (may be empty)
};

// DIR/checkpoint.safetensors: the training state of a run that has not completed.
std::string checkpoint_path(const std::string& dir);

// Runs the training; returns the summary (also written to DIR/summary.json).
nlohmann::json train_run(const RunConfig& cfg, const TrainOutput& out);

// Threads for OpenMP and OpenBLAS: cfg value, or when 0 every core this process may use
// (dist::usable_cores: its CPU affinity, shared with the other unbound ranks of its node).
int configure_threads(int requested);

// Full-batch optimizers (gd, projected_gd) use the whole training set every step.
bool full_batch(const TrainConfig& tc);

}  // namespace attnlab
