#pragma once
// The allocation planner (paper 1): a budget D = sum_l H_l d_l over L layers turned into
// per-layer heads and head dimensions, each with the measured result it rests on.
// Rules (README, "attnlab plan"), each citing its experiment in the plan's reasons:
//   1. heads: one per memory the layer must fetch (H = M; p1_e1 at full scale: the best head
//      count is the number of tokens to fetch, 4 [4, 8] for the 4-gram task, 8 [8, 8] for the
//      8-gram), the same in every layer;
//   2. head dimension: the saturation point d*(T), the smallest power of two >= sqrt(T), at
//      least 4 (p1_e2b at full scale: the bend in d at 4, 8, 16 for T = 16, 64, 256); with a
//      known key dimension K, at least 2K (p1_e2c in the regime and p1_e2d: the bend one doubling
//      past K). A share below H x d*(T) is spent whole; the share beyond it is left unspent;
//   3. the budget split over layers by `profile`: "uniform" (default: on text p1_e3 found it
//      better than front-loading at full scale) or "front" (shares falling linearly from 3 to 1,
//      the paper's front-loaded profile);
//   4. a head dimension at most d_max (64 by default); a layer whose share would need larger
//      heads gets more heads instead;
//   5. with a calibration (--calibrate: pilot runs of the user's task), rule 1's M is replaced
//      by H*, the head count whose pilots did best at the full share (p1_e1's trade-off,
//      measured on the user's task), and rule 2's d*(T) by the saturation point d* measured at
//      H* heads (p1_e2's diminishing returns, located on the user's task).
// The plan spends at most D.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace attnlab {

struct LayerPlan {
  int heads = 0, head_dim = 0;
  std::string reason;
};

// What --calibrate measured: the trade-off (pilot losses per head count at the full share, the
// best count H*) and, at H*, the pilot losses per head dimension and the saturation point.
struct Calibration {
  std::vector<int> heads;             // trade-off pilots: H heads of dimension share / H
  std::vector<double> head_losses;    // their mean validation losses
  int best_heads = 0;                 // H*, 0 = not measured
  std::vector<int> dims;        // pilot head dimensions, increasing
  std::vector<double> losses;   // mean pilot validation loss per dimension
  double tolerance = 0.01;      // relative: d* is the smallest d within it of the best loss
  int saturation = 0;           // d*, 0 = not calibrated
  std::string metric;
};

// The smallest dimension whose loss is within (1 + tol) of the lowest loss (losses > 0;
// NaN losses, from diverged pilots, never qualify). UserError if no loss is finite.
int saturation_point(const std::vector<int>& dims, const std::vector<double>& losses, double tol);

// The pilot grid: powers of two from 2 up to the largest dimension the budget allows M heads
// in every layer (min share / M), that maximum included.
std::vector<int> calibration_dims(int64_t budget, int layers, int memories, int d_max);
// The trade-off pilots' head counts: powers of two H with 2 <= share / H <= d_max.
std::vector<int> calibration_heads(int64_t budget, int layers, int d_max);
// The index of the lowest finite loss; UserError if none is finite.
size_t best_index(const std::vector<double>& losses);

struct Plan {
  int64_t budget = 0, spent = 0;
  int seq_len = 0, memories = 0;
  std::string profile;
  std::vector<LayerPlan> layers;
};

// What the planner is asked: the budget, the shape, and what is known of the task.
struct PlanRequest {
  int64_t budget = 0;
  int layers = 0, seq_len = 0, memories = 4;
  std::string profile = "uniform";
  int d_max = 64;
  int key_dim = 0;  // K, the dimension of what a query matches (0 = unknown)
};

// Rule 2's saturation point for sequence length T and key dimension K (0 = unknown), with
// the measurements it rests on (the text a plan's reason cites).
int measured_saturation(int seq_len, int key_dim, std::string* why = nullptr);

// UserError on impossible inputs (a budget below one dimension per memory and layer, ...).
Plan plan_allocation(const PlanRequest& req, const Calibration* cal = nullptr);

// {"budget", "spent", "profile", "seq_len", "memories", "layers": [{"heads", "head_dim", "reason"}]}
// (`attnlab plan --json`, attnlab.plan in Python).
nlohmann::ordered_json plan_json(const Plan& p);

// The conventional allocation of the same budget (--validate's baseline): an equal share per
// layer, in heads of dimension d (64, as in GPT-2 and most Transformers; smaller if the share is).
Plan conventional_allocation(int64_t budget, int layers, int d);

}  // namespace attnlab
