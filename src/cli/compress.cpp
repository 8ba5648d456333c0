// attnlab compress CKPT [--qk-rank r] [--ov-rank r] [--layers 0,2] [--heads 1,3] -o OUT [--json FILE]
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "analysis/compress.h"
#include "cli/cli.h"
#include "io/atomic_file.h"

namespace attnlab::cli {

std::function<int()> add_compress(CLI::App& app) {
  struct Args {
    std::string ckpt, out, json;
    CompressOptions o;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("compress", "Replace Transformer heads by their best rank-r versions (truncated SVD)");
  sub->add_option("checkpoint", a->ckpt, "model.safetensors of a Transformer run")->required();
  sub->add_option("--qk-rank", a->o.qk_rank, "Rank of each selected head's W_Q W_K^T (with the q/k biases)");
  sub->add_option("--ov-rank", a->o.ov_rank, "Rank of each selected head's W_O W_V (with the v bias)");
  sub->add_option("--layers", a->o.layers, "Layers to compress (default: all), e.g. 0,2")->delimiter(',');
  sub->add_option("--heads", a->o.heads, "Heads to compress in those layers (default: all), e.g. 1,3")->delimiter(',');
  sub->add_option("-o,--out", a->out, "Output checkpoint (an attnlab checkpoint: eval, train's config, compress read it)")->required();
  sub->add_option("--json", a->json, "Also write the per-head errors and parameter counts as JSON to FILE");
  sub->footer(
      "A layer whose every head is compressed gets head (value) dimension r; heads compressed alone keep the\n"
      "layer's dimension, padded with zeros. Full rank reproduces the model.\n"
      "Example: attnlab compress runs/lm/model.safetensors --qk-rank 4 --layers 3,4,5 -o lm_r4.safetensors");
  return [a]() {
    const CompressResult r = compress_checkpoint(a->ckpt, a->o, a->out);
    double worst_qk = 0, worst_ov = 0;
    for (const auto& h : r.heads) { worst_qk = std::max(worst_qk, h.qk_rel_error); worst_ov = std::max(worst_ov, h.ov_rel_error); }
    fmt::print("compressed {} heads: params {} -> {} ({:+.1f}%), largest relative Frobenius error QK {:.3g}, OV {:.3g} -> {}\n",
               r.heads.size(), r.params_before, r.params_after,
               100.0 * double(r.params_after - r.params_before) / double(std::max<int64_t>(1, r.params_before)), worst_qk, worst_ov, a->out);
    if (!a->json.empty()) {
      nlohmann::ordered_json j{{"params_before", r.params_before}, {"params_after", r.params_after}};
      j["head_dim"] = r.config.model.head_dim;
      j["value_dim"] = r.config.model.value_dim;
      auto hs = nlohmann::ordered_json::array();
      for (const auto& h : r.heads)
        hs.push_back({{"layer", h.layer}, {"head", h.head}, {"qk_rel_error", h.qk_rel_error}, {"ov_rel_error", h.ov_rel_error}});
      j["heads"] = hs;
      write_file_atomic(a->json, j.dump(2) + "\n");
    }
    return 0;
  };
}

}  // namespace attnlab::cli
