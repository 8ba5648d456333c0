// Config parsing and validation: defaults, overrides, per-layer lists, and the exact one-line
// errors for bad input.
#include <gtest/gtest.h>

#include "core/error.h"
#include "io/config.h"

using namespace attnlab;

namespace {
const char* kBase = R"(seed = 3
[task]
kind = "sparse_memory"
seq_len = 64
lags = [1, 8, 32]
[model]
d_model = 64
layers = 2
heads = 4
head_dim = 16
[train]
steps = 10
)";

std::string error_of(const std::string& text, const std::vector<std::string>& ov = {}) {
  try {
    parse_run_config(text, "exp.toml", ov);
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST(Config, DefaultsAndPerLayerLists) {
  RunConfig c = parse_run_config(kBase, "exp.toml", {});
  EXPECT_EQ(c.seed, 3);
  EXPECT_EQ(c.model.heads, (std::vector<int>{4, 4}));
  EXPECT_EQ(c.model.head_dim, (std::vector<int>{16, 16}));
  EXPECT_EQ(c.model.value_dim, (std::vector<int>{16, 16}));
  EXPECT_EQ(c.model.ffn, (std::vector<int>{256, 256}));
  EXPECT_EQ(c.model.max_len, 64);
  EXPECT_EQ(c.train.loss, "mse");
  c = parse_run_config(kBase, "exp.toml", {"model.heads=[8,2]", "model.head_dim=[16,4]", "task.readout=mlp", "train.lr=3e-4"});
  EXPECT_EQ(c.model.heads, (std::vector<int>{8, 2}));
  EXPECT_EQ(c.model.head_dim, (std::vector<int>{16, 4}));
  EXPECT_EQ(c.task.readout, "mlp");
  EXPECT_DOUBLE_EQ(c.train.lr, 3e-4);
}

TEST(Config, ResolvedConfigParsesBackToTheSameRun) {
  RunConfig a = parse_run_config(kBase, "exp.toml", {"model.heads=[8,2]", "model.rpe=t5"});
  const std::string text = resolved_toml(a);
  RunConfig b = parse_run_config(text, "config.toml", {});
  EXPECT_EQ(resolved_toml(b), text);
}

TEST(Config, ExactErrorMessages) {
  EXPECT_EQ(error_of(std::string(kBase) + "hedas = 3\n"),
            "exp.toml: train.hedas: unknown key (allowed in [train]: steps, batch, optimizer, lr, momentum, beta1, "
            "beta2, eps, weight_decay, lr_schedule, rho, warmup, min_lr, grad_clip, eval_every, eval_batch, loss, threads, probe_errors)");
  EXPECT_EQ(error_of(kBase, {"model.heads=\"four\""}),
            "command line: model.heads: expected an integer or a list of integers, got a string");
  EXPECT_EQ(error_of(kBase, {"model.heads=0"}), "command line: model.heads: every entry must be >= 1 (got 0)");
  EXPECT_EQ(error_of(kBase, {"model.head_dim=[16,-1]"}), "command line: model.head_dim: every entry must be >= 1 (got -1)");
  EXPECT_EQ(error_of(kBase, {"task.lags=[1,64]"}), "command line: task.lags: lag 64 must be < task.seq_len (64)");
  EXPECT_EQ(error_of(kBase, {"model.heads=[4,4,4]"}),
            "command line: model.heads: has 3 entries but model.layers = 2 (give one entry per layer, or a single integer)");
  EXPECT_EQ(error_of(kBase, {"model.rpe=alibi"}), "command line: model.rpe: 'alibi' is not allowed (allowed: none, lin, log, t5)");
  EXPECT_EQ(error_of(kBase, {"model.heads"}),
            "command line: override 'model.heads' is not of the form key=value (for example model.heads=8)");
  EXPECT_EQ(error_of(kBase, {"model.heads=[1,"}), "command line: override 'model.heads=[1,': the value is not valid TOML");
  EXPECT_EQ(error_of(kBase, {"train.lr=-1"}), "command line: train.lr: must be a finite number > 0 (got -1)");
  EXPECT_EQ(error_of(std::string(kBase) + "dot_product = 1\n", {}),
            "exp.toml: train.dot_product: unknown key (allowed in [train]: steps, batch, optimizer, lr, momentum, beta1, "
            "beta2, eps, weight_decay, lr_schedule, rho, warmup, min_lr, grad_clip, eval_every, eval_batch, loss, threads, probe_errors)");
  EXPECT_EQ(error_of(kBase, {"model.dot_product=1"}), "command line: model.dot_product: expected true or false, got an integer");
  EXPECT_EQ(error_of("seed = 1\n[task]\nseq_len = \n"), "exp.toml:3:11: TOML syntax error: Error while parsing key-value pair: expected value, saw '\\n'");
  EXPECT_EQ(error_of("seed = 1\nmodel = 3\n"), "exp.toml: model: expected a table [model], got an integer");
  EXPECT_EQ(error_of(kBase, {"model.d_in=5"}),
            "command line: model.d_in: is derived from the task and must be 4 here (got 5)");
}

// task.n (split by val_fraction) and task.n_train / task.n_val are two ways to size the data:
// giving both is an error, from the file or the command line, not a silent override.
TEST(Config, TaskNWithNTrainOrNValIsAnError) {
  const std::string msg = ": task.n: give task.n (with task.val_fraction) or task.n_train/task.n_val, not both";
  const std::string head = "[task]\nkind = \"sparse_memory\"\nseq_len = 16\nlags = [1, 4]\n";
  EXPECT_EQ(error_of(head + "n = 100\nn_train = 50\n"), "exp.toml" + msg);
  EXPECT_EQ(error_of(head + "n = 100\nn_val = 10\n"), "exp.toml" + msg);
  EXPECT_EQ(error_of(kBase, {"task.n=100", "task.n_train=50"}), "command line" + msg);
  EXPECT_EQ(error_of(head + "n_val = 10\n", {"task.n=100"}), "command line" + msg);
  // task.n alone splits; the resolved config holds n_train and n_val (not n) and reads back.
  RunConfig c = parse_run_config(head + "n = 100\nval_fraction = 0.2\n", "exp.toml", {});
  EXPECT_EQ(c.task.n_train, 80);
  EXPECT_EQ(c.task.n_val, 20);
  const std::string text = resolved_toml(c);
  RunConfig back = parse_run_config(text, "config.toml", {});
  EXPECT_EQ(back.task.n_train, 80);
  EXPECT_EQ(back.task.n_val, 20);
  EXPECT_EQ(resolved_toml(back), text);
}
