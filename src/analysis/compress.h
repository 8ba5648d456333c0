#pragma once
// Head compression (paper 1): each selected head's bilinear forms are replaced by their best
// rank-r approximations (truncated SVD, Eckart-Young in the Frobenius norm):
//   QK: M_h = s [W_q,h | b_q,h]^T [W_k,h | b_k,h]  ((C+1) x (C+1), s the score scale), so
//       the logits are x~_t^T M_h x~_s with x~ = [x; 1];
//   OV: N_h = W_o,h [W_v,h | b_v,h]  (C x (C+1)), the head's contribution to the residual.
// M_h ~ U_r S_r V_r^T gives W_q' = sqrt(S_r / s') U_r^T and W_k' = sqrt(S_r / s') V_r^T (s' the
// new scale); N_h likewise. At full rank the model computes the same function.
// Each compressed head's dimension becomes r (heads of one layer may differ in size: see
// ModelConfig's HeadGroup): that is the saving, whether one head or a whole layer is compressed.
// Grouping (--group-heads G): a layer's H heads become G groups, by default the heads whose
// logit forms are closest (Ward clustering), or contiguous ones; the merged head's QK form is the mean of its members' (its logits
// are their mean logits) and its OV form their sum, each truncated to the head's dimension
// (its widest member's, or the rank given; zero-padded beyond the form's rank); per-head position
// biases are averaged, fixed ALiBi slopes too (they become a tensor: rpe_learnable in the new
// config). With G = H it is the identity.
#include <functional>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/run_config.h"

namespace attnlab {

struct CompressOptions {
  int qk_rank = 0;          // 0: leave W_Q W_K^T
  int ov_rank = 0;          // 0: leave W_V W_O
  std::vector<int> layers;  // empty: every layer
  std::vector<int> heads;   // empty: every head of the selected layers
  int group_heads = 0;      // > 0: each selected layer's heads merged into this many (then the
                            // ranks, if given, are the merged heads' dimensions)
  std::string group_by = "similar";  // "similar" (Ward clustering of the heads' logit forms) | "contiguous"
};

struct HeadCompression {
  int layer = 0, head = 0;
  double qk_rel_error = 0;  // ||M - M_r||_F / ||M||_F (0 if QK is left)
  double ov_rel_error = 0;  // ||N - N_r||_F / ||N||_F
  std::vector<int> members;  // --group-heads: the original heads merged into this one
};

struct CompressResult {
  RunConfig config;  // the compressed model's config
  std::vector<HeadCompression> heads;
  int64_t params_before = 0, params_after = 0;
  std::vector<float> params;  // the compressed model's arena, in its order
};

// Compresses the Transformer of cfg with parameters A (its arena).
CompressResult compress_arena(const RunConfig& cfg, const Arena<float>& A, const CompressOptions& o);

// Reads the checkpoint, compresses, writes `out` (an attnlab checkpoint with the new config in
// its metadata). UserError on bad options (naming them) or a model that is not a Transformer.
CompressResult compress_checkpoint(const std::string& ckpt, const CompressOptions& o, const std::string& out);

}  // namespace attnlab

namespace attnlab {

// The compression curve of a trained model (paper 1's Figs. 4 and 6, and what its reviewers
// asked for): for each rank r, the validation loss with one head, one layer or the whole
// model compressed to rank r, against the original.
struct CurveRow {
  std::string scope;  // "model", "early" (the first half of the layers), "late" (the rest), "layer", "head"
  int layer = -1, head = -1;
  int rank = 0;
  int64_t params_removed = 0;  // the compressed checkpoint's saving
  double flops_removed = 0;    // forward FLOPs saved per sequence of task.seq_len (train/bench.h's count)
  double val_loss = 0, delta = 0;  // and its increase over the original's
  double rel_error = 0;           // mean relative Frobenius error of the compressed forms
  int groups = 0;                 // scopes "group" and "group_svd": the heads per layer merged into
};
struct CompressionCurve {
  double base_val_loss = 0;
  int64_t params_total = 0;
  std::vector<CurveRow> rows;
};
// forms: "qk", "ov" or "both". Scopes restricted to `layers`/`heads` when given; `heads_too`
// adds one row per head (one at a time).
CompressionCurve compression_curve(const std::string& ckpt, const std::vector<int>& ranks, const std::string& forms,
                                   const std::vector<int>& layers, bool heads_too,
                                   const std::function<void(const std::string&)>& progress);

// The paper's grouped heads against truncated SVD at equal parameters removed: for each G, every
// layer with more than G heads has them merged into G (similar heads together; see
// CompressOptions::group_heads) -> a row of scope "group"; and the QK and OV forms of every head
// of those layers truncated to the rank whose parameters removed are closest to the grouping's
// (on a tie the smaller rank) -> a row of scope "group_svd" with that rank. A G that no layer
// exceeds gives no rows.
CompressionCurve group_comparison(const std::string& ckpt, const std::vector<int>& groups);

}  // namespace attnlab
