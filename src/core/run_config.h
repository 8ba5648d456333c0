#pragma once
// The validated configuration of one run: plain data, filled by io/config.cpp from TOML and
// `key=value` overrides. Defaults here are the documented defaults (README, config reference).
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/activation.h"
#include "kernels/posbias.h"

namespace attnlab {

enum class Norm { none, layer, rms };
enum class Pos { none, sinusoidal, learned };

struct TaskConfig {
  std::string kind = "sparse_memory";
  int seq_len = 64;
  int d_in = 4;
  int d_out = 1;
  std::vector<int> lags = {1, 8, 32};
  std::string readout = "linear";  // linear | mlp | deep_mlp | parity | majority | sum (tasks/readout.h)
  int hidden = 32;                 // width of the mlp and deep_mlp readouts
  std::string inputs = "gaussian"; // sparse_memory, kernel_memory, adaptive_memory values: gaussian | sign (+-1)
  std::string positions = "all";   // sparse_memory: a target at every position t >= max lag | the last only
  int loss_from = 0;               // sparse_memory, kernel_memory: the first position t whose target carries loss
  int vocab = 0;                   // derived: > 0 for token tasks (text_lm: 256)
  int model_in = 0;                // derived: the model's input width where it is not d_in (retrieval)
  int n_gram = 4;                  // ngram_noise: y_t = f(x_t, ..., x_{t-n+1})
  // adaptive_memory: tokens carry a value z_t and a pointer k_t in {1..max_pointer}
  int max_pointer = 8;
  int hops = 1;                    // pointers followed: 1: y_t = f(z_{t-k_t}); 2: also z at the pointer found there; ...
  int value_dim = 1;               // dimension of z_t
  // kernel_memory: y_t = f((x * rho_1)(t), ..., (x * rho_M)(t))
  int memories = 2;                // M
  std::string decay = "poly";      // exp: rho(s) = e^{-beta s} | poly: rho(s) = (1 + s)^{-beta}
  std::vector<double> beta = {1.0};  // one, or one per memory
  // text_lm: byte-level next-token prediction on a text file
  std::string path = "../shared/data/tinyshakespeare.txt";  // relative: against the project root
  int64_t n_train = 8192;          // 0 = a fresh stream of samples
  int64_t n_val = 1024;
  int64_t n_test = 0;
  int64_t seed = -1;               // -1 = the run's seed
  // Sequence-level tasks (paper 3): n samples split by val_fraction (sets n_train, n_val).
  int64_t n = 0;
  double val_fraction = 0.2;
  int lag = 4;                      // ar_forecast: L in x_t = a x_{t-L} + eps_t
  double ar_coef = 0.9;             // ar_forecast: a
  double noise = 0.31622776601683794;  // ar_forecast: sigma of eps_t (the authors': variance 0.1)
  int burn_in = 800;                // ar_forecast: steps before the first window
  int time_channels = 8;            // ar_forecast: pairs of sin/cos channels, periods 32 * 2^k
  std::string time_origin = "window";   // ar_forecast: t of the time channels: window | series position
  std::string ar_split = "random";      // ar_forecast: random (one series, windows split at random) | series
  std::string standardize = "targets";  // ar_forecast: targets (z-scored over all windows) | all (series z-scored)
  int teacher_width = 1024;         // teacher_student_model: heads of the random teacher
  int anchors = 16;                 // teacher_student_ntk: R anchor sequences, drawn from the inputs
  std::vector<double> nu = {3.0, 3.0, 3.0};  // teacher_student_ntk: (nu_c, nu_u, nu_w), the transport bounds
  std::string teacher_w = "full";   // teacher_student_ntk: "full" W (the theory) | "diagonal" (the authors' code)
  int teacher_samples = 8192;       // teacher_student_ntk: M_teacher Monte Carlo draws
  // npy: the user's data (absolute paths once resolved); validation from val_* or val_fraction
  std::string npy_inputs, npy_targets, npy_val_inputs, npy_val_targets;
  bool per_sequence = false;        // npy: targets [N, d_out], one per sequence (derived)
};

struct ModelConfig {
  std::string kind = "transformer";
  int d_model = 64;
  int layers = 2;
  std::vector<int> heads;                   // one entry per layer after resolution
  std::vector<std::vector<int>> head_dim;   // [layer][head]: query/key dimension of each head
  std::vector<std::vector<int>> value_dim;  // [layer][head]: value dimension (default: head_dim)
  std::vector<int> ffn;                     // FFN width per layer, 0 = no FFN
  double logit_cap = 0;  // > 0: every score s (q.k term and position bias) becomes c tanh(s / c)
  Rpe rpe = Rpe::none;
  bool rpe_learnable = true;
  int rpe_buckets = 32;
  int rpe_max_distance = 128;
  Pos pos = Pos::learned;
  bool dot_product = true;
  Norm norm = Norm::layer;
  double score_scale = 0;  // <= 0: 1/sqrt(head_dim)
  Act ffn_activation = Act::gelu;
  // shallow_attention and the RNN family (indrnn, rnn, lstm):
  int width = 64;                    // m: heads (shallow) or hidden units (RNNs)
  std::string activation = "tanh";   // sigma: tanh | erf (erf(x / sqrt 2))
  std::string init = "symmetric";    // symmetric (f = 0 at init; m even) | iid
  std::string u_init = "pm1.5";      // indrnn recurrent weights: pm1.5 (+-1.5, the authors' code) | normal (N(0,1))
  // Derived from the task:
  int d_in = 4;
  int d_out = 1;
  int vocab = 0;  // > 0: token inputs and cross-entropy
  int max_len = 64;
};

// Heads of one layer may differ in size. A layer's fused projection holds the q rows of every
// head (head h at rows q_off .. q_off + dk), then the k rows in the same order, then the v rows
// (v_off .. v_off + dv): the layout of PyTorch's nn.MultiheadAttention when all heads are equal.
// Consecutive heads of equal (dk, dv) form one group, which the attention kernels run as one
// multi-head call.
struct HeadGroup {
  int h0 = 0, H = 0, dk = 0, dv = 0;
  int q_off = 0, v_off = 0;  // column offsets of the group's first head in q (or k) and in v
};
inline int sum_of(const std::vector<int>& v) {
  int s = 0;
  for (int x : v) s += x;
  return s;
}
inline int qk_width(const ModelConfig& m, int l) { return sum_of(m.head_dim[size_t(l)]); }  // sum of d_k,h
inline int v_width(const ModelConfig& m, int l) { return sum_of(m.value_dim[size_t(l)]); }   // sum of d_v,h
inline int q_offset(const ModelConfig& m, int l, int h) {
  int s = 0;
  for (int i = 0; i < h; ++i) s += m.head_dim[size_t(l)][size_t(i)];
  return s;
}
inline int v_offset(const ModelConfig& m, int l, int h) {
  int s = 0;
  for (int i = 0; i < h; ++i) s += m.value_dim[size_t(l)][size_t(i)];
  return s;
}
inline std::vector<HeadGroup> head_groups(const ModelConfig& m, int l) {
  std::vector<HeadGroup> g;
  const auto& dk = m.head_dim[size_t(l)];
  const auto& dv = m.value_dim[size_t(l)];
  int qo = 0, vo = 0;
  for (size_t h = 0; h < dk.size(); ++h) {
    if (g.empty() || g.back().dk != dk[h] || g.back().dv != dv[h]) g.push_back({int(h), 0, dk[h], dv[h], qo, vo});
    ++g.back().H;
    qo += dk[h];
    vo += dv[h];
  }
  return g;
}
// [layer][head] sizes from one size per layer (every head of layer l has dims[l]).
inline std::vector<std::vector<int>> per_head(const std::vector<int>& heads, const std::vector<int>& dims) {
  std::vector<std::vector<int>> v;
  for (size_t l = 0; l < heads.size(); ++l) v.push_back(std::vector<int>(size_t(heads[l]), dims[l]));
  return v;
}
// A layer whose heads all have the same sizes.
inline bool uniform_heads(const ModelConfig& m, int l) { return head_groups(m, l).size() <= 1; }

struct TrainConfig {
  int64_t steps = 2000;
  int batch = 32;
  std::string optimizer = "adamw";  // sgd | adamw | gd | projected_gd | projected_sgd
  double lr = 1e-3;
  double momentum = 0.9;  // sgd
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // adamw
  double weight_decay = 0.0;  // decoupled (adamw) / L2 (sgd); matrices only
  std::string lr_schedule = "constant";  // constant | cosine | inv_sqrt_total (lr / sqrt(steps))
  std::vector<double> rho;  // [rho_c, rho_u, rho_w]: per-head projection radii / sqrt(m); empty = none
  int64_t warmup = 0;
  double min_lr = 0.0;  // cosine floor
  double grad_clip = 0.0;  // global norm, 0 = off
  int64_t eval_every = 100;
  int64_t val_every = 0;     // min_val_loss from a validation pass every this many steps; 0 = eval_every
  int64_t checkpoint_every = 0;  // DIR/checkpoint.safetensors every this many steps; 0 = at each evaluation
  int64_t grad_block = 500;  // block_max_grad_norm: the mean over blocks of this many steps of each block's largest gradient norm
  int eval_batch = 256;
  std::string loss = "mse";  // mse | half_mse (optimizes MSE/2, reports MSE) | ce (token tasks)
  int threads = 0;           // 0 = all cores
  std::vector<int> compress_ranks;  // after training: the compression curve at these ranks (Transformer with the dot product)
  bool compress_heads = false;     // with compress_ranks: also each head alone (the paper's single-head compression)
  std::vector<int> compress_groups;  // after training: each layer's heads merged into G, against SVD at equal parameters removed
  bool best_fit = false;      // paper 2's DP-free layer on a linear lag target: the least error of its class (best_fit_rel)
  bool probe_errors = false;  // shallow_attention + teacher_student_ntk: E2/E3 errors at init in the summary
};

struct RunConfig {
  int64_t seed = 1;
  TaskConfig task;
  ModelConfig model;
  TrainConfig train;
};

}  // namespace attnlab
