// attnlab compress CKPT [--qk-rank r] [--ov-rank r] [--layers 0,2] [--heads 1,3] [--group-heads g] -o OUT [--json FILE]
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

#include <nlohmann/json.hpp>

#include "analysis/compress.h"
#include "cli/cli.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "train/bench.h"
#include "train/evaluate.h"

namespace attnlab::cli {

namespace {

template <class Args>
int run_curve(const Args& a) {
  if (a.o.qk_rank > 0 || a.o.ov_rank > 0 || !a.out.empty() || !a.o.heads.empty() || a.o.group_heads > 0 || a.o.group_by != "similar")
    throw UserError("compress --curve: not with --qk-rank, --ov-rank, --heads, --group-heads, --group-by or -o (the curve tries every rank and head)");
  // One live line on a terminal; a line per evaluation otherwise (a log stays readable).
  const bool tty = isatty(fileno(stderr));
  const CompressionCurve c = compression_curve(a.ckpt, a.curve, a.forms, a.o.layers, !a.no_heads, [tty](const std::string& s) {
    if (tty)
      fmt::print(stderr, "\r\033[K{}", s);
    else
      fmt::print(stderr, "{}\n", s);
  });
  if (tty) fmt::print(stderr, "\r\033[K");
  fmt::print("original: val_loss {:.6g}, {} params\n{:<6} {:>5} {:>5} {:>5} {:>14} {:>12} {:>12} {:>12} {:>10}\n", c.base_val_loss,
             c.params_total, "scope", "layer", "head", "rank", "params_saved", "flops_saved", "val_loss", "added", "rel_err");
  for (const auto& r : c.rows)
    fmt::print("{:<6} {:>5} {:>5} {:>5} {:>14} {:>12.4g} {:>12.6g} {:>+12.4g} {:>10.3g}\n", r.scope,
               r.layer < 0 ? std::string("-") : std::to_string(r.layer), r.head < 0 ? std::string("-") : std::to_string(r.head), r.rank,
               r.params_removed, r.flops_removed, r.val_loss, r.delta, r.rel_error);
  if (!a.json.empty()) {
    nlohmann::ordered_json j{{"base_val_loss", c.base_val_loss}, {"params_total", c.params_total}, {"forms", a.forms}};
    auto rows = nlohmann::ordered_json::array();
    for (const auto& r : c.rows)
      rows.push_back({{"scope", r.scope}, {"layer", r.layer}, {"head", r.head}, {"rank", r.rank}, {"params_removed", r.params_removed},
                      {"flops_removed", r.flops_removed}, {"val_loss", r.val_loss}, {"delta", r.delta}, {"rel_error", r.rel_error}});
    j["rows"] = rows;
    write_file_atomic(a.json, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

std::function<int()> add_compress(CLI::App& app) {
  struct Args {
    std::string ckpt, out, json, forms = "qk";
    CompressOptions o;
    std::vector<int> curve;
    bool no_heads = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("compress", "Replace Transformer heads by their best rank-r versions (truncated SVD)");
  sub->add_option("checkpoint", a->ckpt, "model.safetensors of a Transformer run")->required();
  sub->add_option("--qk-rank", a->o.qk_rank, "Rank of each selected head's W_Q W_K^T (with the q/k biases)");
  sub->add_option("--ov-rank", a->o.ov_rank, "Rank of each selected head's W_O W_V (with the v bias)");
  sub->add_option("--layers", a->o.layers, "Layers to compress (default: all), e.g. 0,2")->delimiter(',');
  sub->add_option("--heads", a->o.heads, "Heads to compress in those layers (default: all), e.g. 1,3")->delimiter(',');
  sub->add_option("--group-heads", a->o.group_heads,
                  "Merge each selected layer's heads into G (mean QK form, summed OV form); with the ranks: "
                  "the merged heads' dimensions");
  sub->add_option("--group-by", a->o.group_by,
                  "--group-heads: similar (default: heads whose logit forms are closest, Ward clustering) | contiguous");
  sub->add_option("-o,--out", a->out, "Output checkpoint (an attnlab checkpoint: eval, train's config, compress read it)");
  sub->add_option("--curve", a->curve, "Instead: the validation loss at each of these ranks, per head, layer and model (no output)")
      ->delimiter(',');
  sub->add_option("--forms", a->forms, "--curve: which forms to compress: qk (default), ov, both");
  sub->add_flag("--no-heads", a->no_heads, "--curve: only whole layers and the whole model, not each head");
  sub->add_option("--json", a->json, "Also write the per-head errors and parameter counts as JSON to FILE");
  sub->footer(
      "Each compressed head gets head (value) dimension r, alone or with its whole layer (heads of one layer\n"
      "may differ in size): the parameters shown are removed. Full rank reproduces the model.\n"
      "Example: attnlab compress runs/lm/model.safetensors --qk-rank 4 --layers 3,4,5 -o lm_r4.safetensors\n"
      "         attnlab compress runs/lm/model.safetensors --curve 1,2,4,8 --json curve.json");
  return [a]() {
    if (!a->curve.empty()) return run_curve(*a);
    if (a->out.empty()) throw UserError("compress: give -o OUT.safetensors (or --curve RANKS)");
    const CompressResult r = compress_checkpoint(a->ckpt, a->o, a->out);
    double worst_qk = 0, worst_ov = 0;
    for (const auto& h : r.heads) { worst_qk = std::max(worst_qk, h.qk_rel_error); worst_ov = std::max(worst_ov, h.ov_rel_error); }
    const RunConfig before = checkpoint_config(a->ckpt, {});
    if (a->o.group_heads > 0) fmt::print("heads per layer {} -> {}\n", fmt::join(before.model.heads, ","), fmt::join(r.config.model.heads, ","));
    const int T = before.task.seq_len;
    const double f0 = transformer_forward_flops(before.model, T), f1 = transformer_forward_flops(r.config.model, T);
    fmt::print("compressed {} heads: params {} -> {} ({:+.1f}%), largest relative Frobenius error QK {:.3g}, OV {:.3g} -> {}\n",
               r.heads.size(), r.params_before, r.params_after,
               100.0 * double(r.params_after - r.params_before) / double(std::max<int64_t>(1, r.params_before)), worst_qk, worst_ov, a->out);
    fmt::print("forward FLOPs per sequence of T = {}: {:.4g} -> {:.4g} ({:+.1f}%)\n", T, f0, f1, 100.0 * (f1 - f0) / f0);
    if (!a->json.empty()) {
      nlohmann::ordered_json j{{"params_before", r.params_before}, {"params_after", r.params_after}, {"seq_len", T},
                               {"flops_per_sequence_before", f0}, {"flops_per_sequence_after", f1}};
      j["heads_per_layer"] = r.config.model.heads;
      j["head_dim"] = r.config.model.head_dim;
      j["value_dim"] = r.config.model.value_dim;
      auto hs = nlohmann::ordered_json::array();
      for (const auto& h : r.heads)
        hs.push_back({{"layer", h.layer}, {"head", h.head}, {"qk_rel_error", h.qk_rel_error}, {"ov_rel_error", h.ov_rel_error}, {"merged_from", h.members}});
      j["heads"] = hs;
      write_file_atomic(a->json, j.dump(2) + "\n");
    }
    return 0;
  };
}

}  // namespace attnlab::cli
