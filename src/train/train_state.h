#pragma once
// Everything a run needs to continue exactly where it stopped: parameters, optimizer state,
// projection centers, the running mean of the iterates, and the running statistics of the
// summary. Data order and samples are pure functions of (seed, step) (core/rng.h), so the
// step count is the data position. Written atomically to DIR/checkpoint.safetensors.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/arena.h"
#include "train/optimizer.h"

namespace attnlab {

struct TrainState {
  int64_t step = 0;  // updates done
  int64_t window_n = 0, best_val_step = -1, blocks = 0;
  int64_t proj_active = 0;  // updates after which the projection clipped some head (-1: unknown, an older checkpoint)
  double max_gnorm = 0, first_loss = 0, train_time = 0, window_loss = 0;
  double last_train = NAN, last_val = NAN, min_val = INFINITY, min_train = INFINITY, target_var = 0;
  std::vector<double> gmax_window, gmax_all, block_max, block_sum;  // per probe group (+ global for blocks)
  std::vector<double> block_first, block_last;  // the first and the last finished block's maxima (NaN: unknown)
  std::vector<double> avg;     // running mean of the iterates theta_1..theta_step
  std::vector<float> theta0;   // projection centers (the initialization)
  nlohmann::ordered_json probes = nlohmann::ordered_json::object();  // the last evaluation's probe fields
};

// Writes the checkpoint (atomic: a reader sees the old or the new file, never a part).
void save_train_state(const std::string& path, const TrainState& s, const Arena<float>& arena, const Optimizer& opt,
                      const std::string& resolved_config);
// The resolved config stored in a checkpoint (UserError if the file is not a training checkpoint).
std::string train_state_config(const std::string& path);
// Loads a checkpoint written for the same architecture and statistics: every size is checked
// against `s` (sized by the caller) and the arena, and a mismatch is a UserError naming the tensor.
void load_train_state(const std::string& path, TrainState& s, Arena<float>& arena, Optimizer& opt);

}  // namespace attnlab
