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
  EXPECT_EQ(c.model.head_dim, (std::vector<std::vector<int>>{{16, 16, 16, 16}, {16, 16, 16, 16}}));
  EXPECT_EQ(c.model.value_dim, c.model.head_dim);
  EXPECT_EQ(c.model.ffn, (std::vector<int>{256, 256}));
  EXPECT_EQ(c.model.max_len, 64);
  EXPECT_EQ(c.train.loss, "mse");
  c = parse_run_config(kBase, "exp.toml", {"model.heads=[8,2]", "model.head_dim=[16,4]", "task.readout=mlp", "train.lr=3e-4"});
  EXPECT_EQ(c.model.heads, (std::vector<int>{8, 2}));
  EXPECT_EQ(c.model.head_dim, (std::vector<std::vector<int>>{std::vector<int>(8, 16), {4, 4}}));
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
            "beta2, eps, weight_decay, lr_schedule, rho, project, warmup, min_lr, grad_clip, eval_every, val_every, checkpoint_every, grad_block, eval_batch, loss, threads, probe_errors, best_fit, compress_ranks, compress_heads, compress_groups)");
  EXPECT_EQ(error_of(kBase, {"model.heads=\"four\""}),
            "command line: model.heads: expected an integer or a list of integers, got a string");
  EXPECT_EQ(error_of(kBase, {"model.heads=0"}), "command line: model.heads: every entry must be >= 1 (got 0)");
  EXPECT_EQ(error_of(kBase, {"model.head_dim=[16,-1]"}), "command line: model.head_dim: layer 1: must be >= 1 (got -1)");
  EXPECT_EQ(error_of(kBase, {"task.lags=[1,64]"}), "command line: task.lags: lag 64 must be < task.seq_len (64)");
  EXPECT_EQ(error_of(kBase, {"model.heads=[4,4,4]"}),
            "command line: model.heads: has 3 entries but model.layers = 2 (give one entry per layer, or a single integer; "
            "one layer's per-head sizes are a nested list, e.g. [[16, 8]])");
  EXPECT_EQ(error_of(kBase, {"model.rpe=alibi"}), "command line: model.rpe: 'alibi' is not allowed (allowed: none, lin, log, t5)");
  EXPECT_EQ(error_of(kBase, {"model.heads"}),
            "command line: override 'model.heads' is not of the form key=value (for example model.heads=8)");
  EXPECT_EQ(error_of(kBase, {"model.heads=[1,"}), "command line: override 'model.heads=[1,': the value is not valid TOML");
  EXPECT_EQ(error_of(kBase, {"train.lr=-1"}), "command line: train.lr: must be a finite number > 0 (got -1)");
  EXPECT_EQ(error_of(std::string(kBase) + "dot_product = 1\n", {}),
            "exp.toml: train.dot_product: unknown key (allowed in [train]: steps, batch, optimizer, lr, momentum, beta1, "
            "beta2, eps, weight_decay, lr_schedule, rho, project, warmup, min_lr, grad_clip, eval_every, val_every, checkpoint_every, grad_block, eval_batch, loss, threads, probe_errors, best_fit, compress_ranks, compress_heads, compress_groups)");
  EXPECT_EQ(error_of(kBase, {"model.dot_product=1"}), "command line: model.dot_product: expected true or false, got an integer");
  EXPECT_EQ(error_of("seed = 1\n[task]\nseq_len = \n"), "exp.toml:3:11: TOML syntax error: Error while parsing key-value pair: expected value, saw '\\n'");
  EXPECT_EQ(error_of("seed = 1\nmodel = 3\n"), "exp.toml: model: expected a table [model], got an integer");
  EXPECT_EQ(error_of(kBase, {"model.d_in=5"}),
            "command line: model.d_in: is derived from the task and must be 4 here (got 5)");
  // adaptive_memory: up to 8 hops, as long as the longest chain fits in the sequence
  const std::string am = "seed = 1\n[task]\nkind = \"adaptive_memory\"\nseq_len = 36\nmax_pointer = 8\n";
  EXPECT_EQ(error_of(am, {"task.hops=4"}), "(no error)");
  EXPECT_EQ(error_of(am, {"task.hops=5"}),
            "exp.toml: task.max_pointer: max_pointer x hops (40) must be < task.seq_len (36) so that every pointer can be followed");
  EXPECT_EQ(error_of(am, {"task.hops=9"}), "command line: task.hops: must be in [1, 8] (got 9)");
  EXPECT_EQ(error_of(am, {"task.readout=sum", "task.d_out=2"}),
            "command line: task.readout: 'sum' has one output: task.d_out must be 1 (got 2)");
}

// Heads of different sizes in one layer: a nested list per layer, uniform layers as integers;
// the resolved config writes them back the same way; a list whose length differs from the
// layer's heads, a size below 1 and a logit cap <= 0 are one-line errors naming key and layer.
TEST(Config, PerHeadSizesAndTheLogitCap) {
  RunConfig c = parse_run_config(kBase, "exp.toml", {"model.head_dim=[[16,16,8,4],8]", "model.value_dim=[4,[1,2,3,4]]",
                                                     "model.logit_cap=2.5"});
  EXPECT_EQ(c.model.head_dim, (std::vector<std::vector<int>>{{16, 16, 8, 4}, {8, 8, 8, 8}}));
  EXPECT_EQ(c.model.value_dim, (std::vector<std::vector<int>>{{4, 4, 4, 4}, {1, 2, 3, 4}}));
  EXPECT_DOUBLE_EQ(c.model.logit_cap, 2.5);
  const std::string text = resolved_toml(c);
  EXPECT_NE(text.find("head_dim = [ [ 16, 16, 8, 4 ], 8 ]"), std::string::npos) << text;
  EXPECT_NE(text.find("logit_cap = 2.5"), std::string::npos) << text;
  EXPECT_EQ(resolved_toml(parse_run_config(text, "config.toml", {})), text);
  // One per-head list for every layer; no cap is not written.
  c = parse_run_config(kBase, "exp.toml", {"model.head_dim=[[8,4,2,2]]"});
  EXPECT_EQ(c.model.head_dim, (std::vector<std::vector<int>>{{8, 4, 2, 2}, {8, 4, 2, 2}}));
  EXPECT_EQ(resolved_toml(c).find("logit_cap"), std::string::npos);
  EXPECT_EQ(error_of(kBase, {"model.head_dim=[[16,16,8],8]"}),
            "command line: model.head_dim: layer 0 lists 3 heads [16, 16, 8] but model.heads gives it 4");
  EXPECT_EQ(error_of(kBase, {"model.heads=[4,2]", "model.value_dim=[4,[8,8,8]]"}),
            "command line: model.value_dim: layer 1 lists 3 heads [8, 8, 8] but model.heads gives it 2");
  EXPECT_EQ(error_of(kBase, {"model.head_dim=[[16,0,8,4],8]"}), "command line: model.head_dim: layer 0 head 1: must be >= 1 (got 0)");
  EXPECT_EQ(error_of(kBase, {"model.head_dim=[[],8]"}), "command line: model.head_dim: layer 0: the list of heads is empty");
  EXPECT_EQ(error_of(kBase, {"model.head_dim=[8,\"a\"]"}),
            "command line: model.head_dim: expected an integer, or a list with one entry per layer (an integer, or a list of "
            "one per head), found a string at layer 1");
  EXPECT_EQ(error_of(kBase, {"model.logit_cap=0"}), "command line: model.logit_cap: must be a finite number > 0 (got 0)");
  EXPECT_EQ(error_of(kBase, {"model.logit_cap=-1"}), "command line: model.logit_cap: must be a finite number > 0 (got -1)");
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

// Each task family and model kind owns its keys: a key of another kind is an error naming
// the kinds it belongs to and the keys that do belong; the resolved config holds the keys
// of the chosen kinds only, reads back to itself, and an older resolved config (every
// kind's keys) keeps loading.
TEST(Config, EachKindOwnsItsKeys) {
  EXPECT_EQ(error_of(kBase, {"model.kind=indrnn", "model.width=8"}),
            "exp.toml: model.d_model: not a key of model.kind = \"indrnn\" but of transformer (the keys of indrnn: kind, "
            "width, activation, init, u_init, d_in, d_out, vocab, max_len)");
  EXPECT_EQ(error_of(kBase, {"task.anchors=3"}),
            "command line: task.anchors: not a key of task.kind = \"sparse_memory\" but of teacher_student_ntk (the keys of "
            "sparse_memory: kind, seq_len, n_train, n_val, n_test, seed, n, val_fraction, d_in, d_out, lags, positions, loss_from, inputs, readout, hidden)");
  EXPECT_EQ(error_of("[task]\nkind = \"ar_forecast\"\nd_in = 3\n"),
            "exp.toml: task.d_in: not a key of task.kind = \"ar_forecast\" but of sparse_memory, teacher_student_ntk, "
            "teacher_student_model, kernel_memory, ngram_noise, retrieval, npy (the keys of ar_forecast: kind, seq_len, n_train, n_val, n_test, seed, n, val_fraction, lag, "
            "ar_coef, noise, burn_in, time_channels, time_origin, split, standardize)");

  // Resolved configs: only the chosen kinds' keys, and a fixed point of read-then-write.
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {kBase, {}},
      {"[task]\nkind = \"ar_forecast\"\nlag = 3\nn = 50\n[model]\nkind = \"indrnn\"\nwidth = 6\nu_init = \"pm1.5\"\n", {}},
      {"[task]\nkind = \"teacher_student_ntk\"\nd = 3\nseq_len = 5\nn = 40\n[model]\nkind = \"shallow_attention\"\nwidth = 4\n", {}},
      {"[task]\nkind = \"teacher_student_model\"\nd = 3\nn = 40\n[model]\nkind = \"lstm\"\nwidth = 4\n", {}},
      {"[model]\nkind = \"rnn\"\nwidth = 4\nactivation = \"erf\"\n", {}}};
  for (const auto& [text, ov] : cases) {
    const RunConfig c = parse_run_config(text, "exp.toml", ov);
    const std::string resolved = resolved_toml(c);
    EXPECT_EQ(resolved_toml(parse_run_config(resolved, "resolved.toml", {})), resolved) << resolved;
    if (c.model.kind != "transformer") {
      for (const char* k : {"heads", "ffn", "rpe", "d_model", "norm"}) EXPECT_EQ(resolved.find("\n" + std::string(k) + " ="), std::string::npos) << k << "\n" << resolved;
    } else {
      for (const char* k : {"width", "u_init", "init"}) EXPECT_EQ(resolved.find("\n" + std::string(k) + " ="), std::string::npos) << k << "\n" << resolved;
    }
    if (c.task.kind != "teacher_student_ntk") EXPECT_EQ(resolved.find("\nanchors ="), std::string::npos) << resolved;
    if (c.task.kind != "sparse_memory") EXPECT_EQ(resolved.find("\nlags ="), std::string::npos) << resolved;
  }

  // A resolved config written before kinds owned their keys (tests/data) still loads, with
  // the values it had.
  const RunConfig old = load_run_config(std::string(ATTNLAB_SOURCE_DIR) + "/tests/data/legacy_resolved_indrnn.toml", {});
  EXPECT_EQ(old.model.kind, "indrnn");
  EXPECT_EQ(old.model.width, 64);
  EXPECT_EQ(old.task.kind, "ar_forecast");
  EXPECT_EQ(old.task.lag, 16);
  EXPECT_EQ(old.task.d_in, 9);
  EXPECT_EQ(old.train.steps, 600);
  // ... but a config that is not such a resolved one gets no such leniency.
  EXPECT_NE(error_of("[task]\nkind = \"ar_forecast\"\nlags = [1]\n").find("not a key of task.kind"), std::string::npos);
}
