#pragma once
// The numeric fields a run may write to summary.json (README: Outputs), so that a spec's
// regime gate on a field no run writes is an error when the spec loads, not a silent n/a.
#include <string>

namespace attnlab {

inline bool is_summary_field(const std::string& y) {
  static const char* const names[] = {
      "final_train_loss", "final_val_loss", "min_val_loss", "best_val_step", "val_target_var", "final_val_rel", "min_train_rel", "proj_active_frac",
      "test_loss", "min_train_loss", "avg_iterate_train_loss", "avg_iterate_val_loss", "max_grad_norm", "block_max_grad_norm", "block_first_grad_norm", "block_last_grad_norm",
      "params_total", "params_attention", "attention_budget", "final_val_bits_per_byte", "min_val_bits_per_byte",
      "approx_error_max", "approx_error_mean", "best_fit_rel", "lin_error_max", "lin_error_mean", "steps", "wall_s", "train_s",
      "tokens_per_s", "ms_per_step", "threads", "ranks", "diverged_step", "final_slope", "max_abs_logit", "mean_abs_logit",
      "attn_entropy", "attn_entropy_ratio", "qk_eff_rank", "val_loss_pos_ratio"};
  for (const char* n : names)
    if (y == n) return true;
  // per group, per layer, per compression scope and rank
  static const char* const prefixes[] = {"max_grad_norm.", "block_max_grad_norm.", "block_first_grad_norm.", "block_last_grad_norm.", "max_abs_logit.l", "attn_entropy_ratio.l",
                                         "compress_delta.", "compress_saved.", "compress_late_minus_early.", "compress_entropy_corr.", "compress_head_delta.", "compress_head_late_minus_early.", "val_loss_pos."};
  for (const char* p : prefixes)
    if (y.rfind(p, 0) == 0 && y.size() > std::string(p).size()) return true;
  return false;
}

// Fields that do not depend on training (paper 3's E2/E3 probes at initialization,
// train.probe_errors; the model class's least error, train.best_fit): whether the run
// converged says nothing about them.
inline bool is_init_field(const std::string& y) {
  return y.rfind("approx_error_", 0) == 0 || y.rfind("lin_error_", 0) == 0 || y == "best_fit_rel";
}

}  // namespace attnlab
