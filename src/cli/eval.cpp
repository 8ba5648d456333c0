// attnlab eval CKPT [key=value ...] [--json FILE] | [--inputs X.npy --predict OUT.npy]
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "train/evaluate.h"
#include "train/predict.h"

namespace attnlab::cli {

std::function<int()> add_eval(CLI::App& app) {
  struct Args {
    std::string ckpt, json, inputs, predict;
    int batch = 256;
    std::vector<std::string> overrides;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("eval", "Evaluate a checkpoint on its task's validation (and test) set, or predict on .npy inputs");
  sub->add_option("checkpoint", a->ckpt, "model.safetensors of a run (or of `attnlab compress`)")->required();
  sub->add_option("overrides", a->overrides, "Overrides key=value of the config stored in the checkpoint, e.g. task.seq_len=256");
  sub->add_option("--json", a->json, "Also write the results as JSON to FILE");
  sub->add_option("--inputs", a->inputs, "Inputs as .npy: [N, T, d_in] (real) or [N, T] (integer tokens)");
  sub->add_option("--predict", a->predict, "With --inputs: write the model's outputs to this .npy (float32)");
  sub->add_option("--batch", a->batch, "With --predict: sequences per forward pass (default 256)");
  sub->footer(
      "Uses the config stored in the checkpoint's metadata. Prints the losses and the attention probes.\n"
      "With --inputs and --predict: writes [N, T, out] (a prediction at every position; logits for a\n"
      "token model) or [N, out] (a model with one output per sequence) and nothing else.\n"
      "Example: attnlab eval runs/h8/model.safetensors task.n_val=4096 --json eval.json\n"
      "         attnlab eval runs/h8/model.safetensors --inputs x.npy --predict yhat.npy");
  return [a]() {
    if (a->inputs.empty() != a->predict.empty())
      throw UserError(a->inputs.empty() ? "--predict: needs --inputs (the .npy to predict on)" : "--inputs: needs --predict (the .npy to write)");
    if (!a->predict.empty()) {
      if (!a->json.empty()) throw UserError("--json: not with --predict (predictions go to the .npy)");
      const PredictResult r = predict_npy(a->ckpt, a->overrides, a->inputs, a->predict, a->batch);
      std::string shape;
      for (size_t i = 0; i < r.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(r.shape[i]);
      fmt::print("predicted {} sequences -> {} [{}] float32\n", r.sequences, a->predict, shape);
      return 0;
    }
    const RunConfig cfg = checkpoint_config(a->ckpt, a->overrides);
    const nlohmann::ordered_json j = evaluate_checkpoint(cfg, a->ckpt);
    std::string line = fmt::format("val_loss {:.6g}", j["val_loss"].get<double>());
    if (j.contains("val_rel")) line += fmt::format(" ({:.3f}% of the target variance)", 100.0 * j["val_rel"].get<double>());
    if (j.contains("val_bits_per_byte")) line += fmt::format(" ({:.4f} bits per byte)", j["val_bits_per_byte"].get<double>());
    if (j.contains("test_loss")) line += fmt::format(", test_loss {:.6g}", j["test_loss"].get<double>());
    line += fmt::format(", {} params", j["params_total"].get<int64_t>());
    if (j.contains("max_abs_logit"))
      line += fmt::format(", max |logit| {:.3g}, entropy ratio {:.3f}", j["max_abs_logit"].get<double>(),
                          j["attn_entropy_ratio"].get<double>());
    fmt::print("{}\n", line);
    if (!a->json.empty()) write_file_atomic(a->json, j.dump(2) + "\n");
    return 0;
  };
}

}  // namespace attnlab::cli
