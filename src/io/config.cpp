#include "io/config.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "core/error.h"
#include "io/atomic_file.h"
#include "models/model.h"
#include "tasks/task.h"
#include "io/toml_keys.h"
#include "io/config_toml_keys.h"

namespace attnlab {

const char* to_string(Rpe r) { return r == Rpe::none ? "none" : r == Rpe::lin ? "lin" : r == Rpe::log ? "log" : "t5"; }
const char* to_string(Pos p) { return p == Pos::none ? "none" : p == Pos::sinusoidal ? "sinusoidal" : "learned"; }
const char* to_string(Norm n) { return n == Norm::none ? "none" : n == Norm::layer ? "layer" : "rms"; }
const char* to_string(Act a) { return a == Act::gelu ? "gelu" : a == Act::relu ? "relu" : "tanh"; }

namespace {

using namespace config_detail;

// key -> the kinds of a registry that declare it, read off their declarations.
template <class Config>
std::map<std::string, std::vector<std::string>> key_owners(const std::vector<KindKeys<Config>>& kinds) {
  std::map<std::string, std::vector<std::string>> owners;
  for (const auto& kind : kinds) {
    toml::table t;
    Writer w(t);
    Config c;
    kind.declare(w, c);
    for (const auto& k : w.keys()) owners[k].push_back(kind.name);
  }
  return owners;
}

template <class Config>
const KindKeys<Config>& kind_named(const std::vector<KindKeys<Config>>& kinds, const std::string& name) {
  for (const auto& k : kinds)
    if (k.name == name) return k;
  throw std::logic_error("no kind " + name);
}

template <class Config>
std::vector<std::string> kind_names(const std::vector<KindKeys<Config>>& kinds) {
  std::vector<std::string> names;
  for (const auto& k : kinds) names.push_back(k.name);
  return names;
}

// A resolved config written before kinds owned their keys holds every kind's keys: it is
// recognized by all of these (no user writes them all), and its other kinds' keys are ignored.
bool legacy_resolved(const toml::table* task, const toml::table* model) {
  if (!task || !model) return false;
  for (const char* k : {"lag", "ar_coef", "burn_in", "time_channels", "teacher_width", "anchors", "nu", "teacher_samples",
                        "lags", "readout", "hidden"})
    if (!task->get(k)) return false;
  for (const char* k : {"d_model", "heads", "rpe_buckets", "width", "u_init", "vocab", "max_len"})
    if (!model->get(k)) return false;
  return true;
}

// A table named after a kind inside [task] or [model] holds keys for that kind only: with
// `[model.lstm] width = 128`, width is set when model.kind = "lstm" and ignored otherwise, so
// one spec can sweep over kinds whose keys differ. Returns the section with the chosen
// kind's table merged in and the other kinds' tables dropped.
toml::table kind_scoped(const toml::table* t, const std::string& sec, const std::string& default_kind,
                        const std::vector<std::string>& kinds, const Source& src) {
  toml::table out;
  if (!t) return out;
  std::string kind = default_kind;
  if (const toml::node* k = t->get("kind"); k && k->is_string()) kind = k->as_string()->get();
  for (const auto& [k, v] : *t) {
    const std::string key(k.str());
    if (!v.is_table() || std::find(kinds.begin(), kinds.end(), key) == kinds.end()) {
      out.insert_or_assign(key, v);
      continue;
    }
    if (key != kind) continue;
    for (const auto& [k2, v2] : *v.as_table()) {
      const std::string key2(k2.str());
      if (t->get(key2)) {
        const std::string full = sec + "." + key + "." + key2;
        const std::string where = src.overridden.count(full) || src.overridden.count(sec + "." + key2) ? "command line" : src.file;
        throw UserError(where + ": " + full + ": also given as " + sec + "." + key2 + " (give it once)");
      }
      out.insert_or_assign(key2, v2);
    }
  }
  return out;
}

const toml::table* section(const toml::table& root, const std::string& name, const Source& src) {
  const toml::node* n = root.get(name);
  if (!n) return nullptr;
  if (!n->is_table()) {
    const std::string where = src.overridden.count(name) ? "command line" : src.file;
    throw UserError(where + ": " + name + ": expected a table [" + name + "], got " + type_name(*n));
  }
  return n->as_table();
}

void apply_override(toml::table& root, const std::string& ov, Source& src) {
  const size_t eq = ov.find('=');
  if (eq == std::string::npos || eq == 0)
    throw UserError("command line: override '" + ov + "' is not of the form key=value (for example model.heads=8)");
  const std::string key = ov.substr(0, eq), value = ov.substr(eq + 1);
  std::vector<std::string> parts;
  std::stringstream ss(key);
  for (std::string p; std::getline(ss, p, '.');) {
    if (p.empty() || p.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos)
      throw UserError("command line: override '" + ov + "': '" + key + "' is not a dotted key like train.lr");
    parts.push_back(p);
  }
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
    if (!value.empty() && std::string("[{\"'").find(value[0]) != std::string::npos)
      throw UserError("command line: override '" + ov + "': the value is not valid TOML");
    parsed.insert_or_assign("v", value);  // a bare word, e.g. task.readout=mlp
  }
  toml::table* t = &root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    toml::node* n = t->get(parts[i]);
    if (!n) {
      t->insert_or_assign(parts[i], toml::table{});
      n = t->get(parts[i]);
    }
    if (!n->is_table())
      throw UserError("command line: override '" + ov + "': '" + parts[i] + "' is not a table");
    t = n->as_table();
  }
  t->insert_or_assign(parts.back(), *parsed.get("v"));
  src.overridden.insert(key);
}



// Why train.best_fit cannot measure this run ("" if it can): it needs paper 2's DP-free layer
// (train/best_fit.h) on a task whose target is a linear lag target.
std::string best_fit_unsupported(const RunConfig& c) {
  const ModelConfig& m = c.model;
  if (m.kind != "transformer" || m.layers != 1 || m.ffn.at(0) != 0 || m.dot_product || m.norm != Norm::none ||
      m.pos != Pos::none || !(m.rpe == Rpe::log || (m.rpe == Rpe::lin && m.rpe_learnable)))
    return "needs one DP-free layer: model.kind = \"transformer\", layers = 1, ffn = 0, dot_product = false, norm = \"none\", "
           "pos = \"none\", rpe = \"lin\" (learnable) or \"log\"";
  LagTarget t;
  if ((c.task.kind != "sparse_memory" && c.task.kind != "kernel_memory") || !make_task(c.task, 1)->lag_target(t))
    return "needs a linear lag target: task.kind = \"sparse_memory\" with one lag or \"kernel_memory\" with one memory, "
           "d_in = d_out = 1, readout = \"linear\"";
  return "";
}

}  // namespace

// The run config inside an experiment spec: [base] (inline or a file), then the scale's
// overrides of non-axis keys.
toml::table spec_base(const toml::table& spec, const std::string& source, const std::string& scale) {
  toml::table root;
  const toml::node* base = spec.get("base");
  if (!base) throw UserError(source + ": base: an experiment spec needs [base.task], [base.model], [base.train] or base = \"file.toml\"");
  if (base->is_string()) {
    namespace fs = std::filesystem;
    const fs::path p = fs::path(source).parent_path() / base->as_string()->get();
    const std::string text = read_file(p.string(), "base config");
    try {
      root = toml::parse(text, p.string());
    } catch (const toml::parse_error& e) {
      throw UserError(p.string() + ":" + std::to_string(e.source().begin.line) + ": TOML syntax error: " + std::string(e.description()));
    }
  } else if (base->is_table()) {
    root = *base->as_table();
  } else {
    throw UserError(source + ": base: expected a table or a file name, got " + type_name(*base));
  }
  if (scale.empty()) return root;
  const toml::table* scales = spec.get_as<toml::table>("scale");
  const toml::table* sc = scales ? scales->get_as<toml::table>(scale) : nullptr;
  if (!sc) throw UserError(source + ": scale." + scale + ": no such scale in this spec");
  std::set<std::string> axes;
  if (const toml::table* sweep = spec.get_as<toml::table>("sweep"))
    for (const auto& [key, v] : dotted_entries(*sweep)) axes.insert(key);
  for (const auto& [key, node] : dotted_entries(*sc)) {  // `train.steps = 300` and `"train.steps" = 300` alike
    const toml::node& v = *node;
    if (key == "seeds" || axes.count(key)) continue;  // sweep axes: the runner's business
    std::vector<std::string> parts;
    std::stringstream ss(key);
    for (std::string part; std::getline(ss, part, '.');) parts.push_back(part);
    toml::table* t = &root;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      if (!t->get(parts[i])) t->insert_or_assign(parts[i], toml::table{});
      t = t->get_as<toml::table>(parts[i]);
      if (!t) throw UserError(source + ": scale." + scale + "." + key + ": '" + parts[i] + "' is not a table");
    }
    t->insert_or_assign(parts.back(), v);
  }
  return root;
}

RunConfig parse_run_config(std::string_view text, const std::string& source, const std::vector<std::string>& overrides,
                           const std::string& scale) {
  Source src{source, {}};
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw UserError(source + ":" + std::to_string(e.source().begin.line) + ":" + std::to_string(e.source().begin.column) +
                    ": TOML syntax error: " + std::string(e.description()));
  }
  if (root.get("experiment")) root = spec_base(root, source, scale);
  else if (!scale.empty()) throw UserError(source + ": --scale applies to experiment specs, and this file has no [experiment]");
  for (const auto& ov : overrides) apply_override(root, ov, src);

  RunConfig c;
  Reader top(&root, "", src);
  top.integer("seed", c.seed, 0);
  top.node("task");
  top.node("model");
  top.node("train");
  top.finish();

  // [task]: the keys every task has, then the chosen family's own (tasks/*.cpp).
  const toml::table task_scoped = kind_scoped(section(root, "task", src), "task", "sparse_memory", kind_names(task_kinds()), src);
  const toml::table model_scoped = kind_scoped(section(root, "model", src), "model", "transformer", kind_names(model_kinds()), src);
  const toml::table* task_table = root.get("task") ? &task_scoped : nullptr;
  const toml::table* model_table = root.get("model") ? &model_scoped : nullptr;
  const bool legacy = legacy_resolved(task_table, model_table);
  Reader t(task_table, "task", src);
  TaskConfig& k = c.task;
  t.choice("kind", k.kind, kind_names(task_kinds()));
  t.integer("seq_len", k.seq_len, 1, 1 << 20);  // T
  t.integer("n_train", k.n_train, 0);
  t.integer("n_val", k.n_val, 1);
  t.integer("n_test", k.n_test, 0);
  t.integer("seed", k.seed, -1);
  t.integer("n", k.n, 0);
  t.number("val_fraction", k.val_fraction, 0.0, true);
  if (k.val_fraction >= 1.0) t.fail("val_fraction", "must be < 1");
  kind_named(task_kinds(), k.kind).declare(t, k);
  t.finish(k.kind, key_owners(task_kinds()), legacy);
  if (t.has("n") && (t.has("n_train") || t.has("n_val")))
    t.fail("n", "give task.n (with task.val_fraction) or task.n_train/task.n_val, not both");
  if (k.n > 0) {  // n samples, split into training and validation sets
    k.n_val = std::max<int64_t>(1, std::llround(double(k.n) * k.val_fraction));
    k.n_train = k.n - k.n_val;
    if (k.n_train < 1) t.fail("n", "leaves no training sample after the validation split");
  }

  // [model]: its kind, then the kind's own keys (models/*.cpp).
  Reader m(model_table, "model", src);
  ModelConfig& mc = c.model;
  m.choice("kind", mc.kind, kind_names(model_kinds()));
  kind_named(model_kinds(), mc.kind).declare(m, mc);
  // Derived from the task; accepted (a resolved config is a valid input) but must agree.
  const int d_in = k.model_in > 0 ? k.model_in : k.d_in, d_out = k.d_out, vocab = k.vocab, max_len = k.seq_len;
  if (vocab > 0 && mc.kind != "transformer")
    m.fail("kind", "'" + mc.kind + "' takes real inputs; task " + k.kind + " gives tokens (use model.kind = \"transformer\")");
  for (auto [key, want] : {std::pair<const char*, int>{"d_in", d_in}, {"d_out", d_out}, {"vocab", vocab}, {"max_len", max_len}}) {
    int got = want;
    m.integer(key, got, 0);
    if (got != want)
      m.fail(key, "is derived from the task and must be " + std::to_string(want) + " here (got " + std::to_string(got) + ")");
  }
  mc.d_in = d_in; mc.d_out = d_out; mc.vocab = vocab; mc.max_len = max_len;
  m.finish(mc.kind, key_owners(model_kinds()), legacy);

  // [train]
  Reader r(section(root, "train", src), "train", src);
  TrainConfig& tc = c.train;
  r.integer("steps", tc.steps, 1);
  r.integer("batch", tc.batch, 1, 1 << 20);
  r.choice("optimizer", tc.optimizer, {"sgd", "adamw", "gd", "projected_gd", "projected_sgd"});
  r.number("lr", tc.lr, 0.0, true);
  r.number("momentum", tc.momentum, 0.0);
  r.number("beta1", tc.beta1, 0.0);
  r.number("beta2", tc.beta2, 0.0);
  r.number("eps", tc.eps, 0.0, true);
  r.number("weight_decay", tc.weight_decay, 0.0);
  r.choice("lr_schedule", tc.lr_schedule, {"constant", "cosine", "inv_sqrt_total"});
  if (const toml::node* n = r.node("rho")) {  // [rho_c, rho_u, rho_w], or one number for all three
    const toml::array* a = n->as_array();
    if (!n->is_number() && (!a || a->size() != 3))
      r.fail("rho", "expected a number or a list of three numbers [rho_c, rho_u, rho_w]");
    const auto radius = [&r](const toml::node& e) {
      if (!e.is_number()) r.fail("rho", std::string("expected numbers, found ") + type_name(e) + " in the list");
      const double v = e.is_integer() ? double(e.as_integer()->get()) : e.as_floating_point()->get();
      if (!(v > 0) || !std::isfinite(v)) r.fail("rho", "every radius must be a finite number > 0");
      return v;
    };
    if (a)
      for (const auto& e : *a) tc.rho.push_back(radius(e));
    else
      tc.rho.assign(3, radius(*n));
  }
  bool project = true;  // false: no projection although rho is given (one spec sweeps with and without)
  r.boolean("project", project);
  if (!project) tc.rho.clear();
  r.integer("warmup", tc.warmup, 0);
  r.number("min_lr", tc.min_lr, 0.0);
  r.number("grad_clip", tc.grad_clip, 0.0);
  r.integer("eval_every", tc.eval_every, 1);
  r.integer("val_every", tc.val_every, 0);
  r.integer("checkpoint_every", tc.checkpoint_every, 0);
  r.integer("grad_block", tc.grad_block, 1);
  r.integer("eval_batch", tc.eval_batch, 1, 1 << 20);
  const std::string want_loss = vocab > 0 ? "ce" : "mse";
  tc.loss = want_loss;
  r.choice("loss", tc.loss, {"mse", "half_mse", "ce"});
  if ((tc.loss == "ce") != (vocab > 0)) r.fail("loss", vocab > 0 ? "must be 'ce' for a token task" : "must be 'mse' or 'half_mse' for task " + k.kind);
  r.integer("threads", tc.threads, 0, 1024);
  r.boolean("probe_errors", tc.probe_errors);
  r.boolean("best_fit", tc.best_fit);
  r.ints("compress_ranks", tc.compress_ranks, 1, true);
  r.boolean("compress_heads", tc.compress_heads);
  r.ints("compress_groups", tc.compress_groups, 1, true);
  r.finish();
  if (tc.compress_heads && tc.compress_ranks.empty()) r.fail("compress_heads", "needs train.compress_ranks (the ranks each head is compressed to)");
  if (!tc.compress_ranks.empty() && (mc.kind != "transformer" || !mc.dot_product))
    r.fail("compress_ranks", "needs model.kind = \"transformer\" with the dot product (it compresses W_Q W_K^T)");
  if (!tc.compress_groups.empty() && mc.kind != "transformer") r.fail("compress_groups", "needs model.kind = \"transformer\" (it merges attention heads)");
  if (tc.best_fit) {
    const std::string why = best_fit_unsupported(c);
    if (!why.empty()) r.fail("best_fit", why);
  }
  if (tc.probe_errors && (mc.kind != "shallow_attention" || k.kind != "teacher_student_ntk"))
    r.fail("probe_errors", "needs model.kind = \"shallow_attention\" and task.kind = \"teacher_student_ntk\"");
  for (double b : {tc.beta1, tc.beta2})
    if (b >= 1.0) r.fail(b == tc.beta1 ? "beta1" : "beta2", "must be < 1");
  return c;
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides, const std::string& scale) {
  return parse_run_config(read_file(path, "config"), path, overrides, scale);
}

std::string resolved_toml(const RunConfig& c) {
  // The keys every task has, then the family's own; the model's kind and own keys, then
  // the values derived from the task.
  TaskConfig tk = c.task;
  toml::table task{{"kind", tk.kind}, {"seq_len", tk.seq_len}, {"n_train", tk.n_train}, {"n_val", tk.n_val},
                   {"n_test", tk.n_test}, {"seed", tk.seed}};
  Writer tw(task);
  kind_named(task_kinds(), tk.kind).declare(tw, tk);
  // (absent at their defaults, so that older runs keep their config hash)
  if (tk.loss_from == 0) task.erase("loss_from");
  if (tk.kind == "kernel_memory" && tk.positions == "all") task.erase("positions");
  ModelConfig m = c.model;
  toml::table model{{"kind", m.kind}};
  Writer mw(model);
  kind_named(model_kinds(), m.kind).declare(mw, m);
  for (auto [key, v] : {std::pair<const char*, int>{"d_in", m.d_in}, {"d_out", m.d_out}, {"vocab", m.vocab}, {"max_len", m.max_len}})
    model.insert_or_assign(key, v);
  const TrainConfig& t = c.train;
  toml::table train{{"steps", t.steps}, {"batch", t.batch}, {"optimizer", t.optimizer}, {"lr", t.lr},
                    {"momentum", t.momentum}, {"beta1", t.beta1}, {"beta2", t.beta2}, {"eps", t.eps},
                    {"weight_decay", t.weight_decay}, {"lr_schedule", t.lr_schedule}, {"warmup", t.warmup},
                    {"min_lr", t.min_lr}, {"grad_clip", t.grad_clip}, {"eval_every", t.eval_every},
                    {"eval_batch", t.eval_batch}, {"loss", t.loss}, {"threads", t.threads}, {"probe_errors", t.probe_errors}};
  if (t.best_fit) train.insert("best_fit", true);  // (absent when false, so older runs keep their hash)
  if (t.grad_block != TrainConfig{}.grad_block) train.insert("grad_block", t.grad_block);  // (absent: the default, so older runs keep their hash)
  if (t.val_every != 0) train.insert("val_every", t.val_every);  // (absent: the default, so older runs keep their hash)
  if (t.checkpoint_every != 0) train.insert("checkpoint_every", t.checkpoint_every);  // (likewise)
  if (!t.compress_ranks.empty()) {
    toml::array ranks;
    for (int v : t.compress_ranks) ranks.push_back(v);
    train.insert("compress_ranks", ranks);
  }
  if (t.compress_heads) train.insert("compress_heads", true);  // (absent when false, so older runs keep their hash)
  if (!t.compress_groups.empty()) {  // (likewise absent when empty)
    toml::array groups;
    for (int v : t.compress_groups) groups.push_back(v);
    train.insert("compress_groups", groups);
  }
  if (!t.rho.empty()) {
    toml::array rho;
    for (double v : t.rho) rho.push_back(v);
    train.insert("rho", rho);
  }
  toml::table root{{"seed", c.seed}, {"task", task}, {"model", model}, {"train", train}};
  std::ostringstream ss;
  ss << "# attnlab resolved config: every default and derived value written out\n" << root << "\n";
  return ss.str();
}

}  // namespace attnlab
