#include "io/config.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/toml_keys.h"

namespace attnlab {

const char* to_string(Rpe r) { return r == Rpe::none ? "none" : r == Rpe::lin ? "lin" : r == Rpe::log ? "log" : "t5"; }
const char* to_string(Pos p) { return p == Pos::none ? "none" : p == Pos::sinusoidal ? "sinusoidal" : "learned"; }
const char* to_string(Norm n) { return n == Norm::none ? "none" : n == Norm::layer ? "layer" : "rms"; }
const char* to_string(Act a) { return a == Act::gelu ? "gelu" : a == Act::relu ? "relu" : "tanh"; }

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s;
}

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "a list";
    case toml::node_type::table: return "a table";
    default: return "a date/time";
  }
}

struct Source {
  std::string file;
  std::set<std::string> overridden;  // keys set on the command line
};

// Reads the keys of one table, recording which it consumed, so that unknown keys are errors.
class Reader {
 public:
  Reader(const toml::table* t, std::string section, const Source& src) : t_(t), sec_(std::move(section)), src_(src) {}

  std::string full(const std::string& key) const { return sec_.empty() ? key : sec_ + "." + key; }
  [[noreturn]] void fail(const std::string& key, const std::string& msg) const {
    const std::string k = full(key);
    const std::string where = src_.overridden.count(k) ? "command line" : src_.file;
    throw UserError(where + ": " + k + ": " + msg);
  }
  const toml::node* node(const std::string& key) {
    keys_.push_back(key);
    return t_ ? t_->get(key) : nullptr;
  }
  bool has(const std::string& key) const { return t_ && t_->get(key); }

  void integer(const std::string& key, int64_t& out, int64_t lo, int64_t hi = INT64_MAX) {
    const toml::node* n = node(key);
    if (!n) return;
    if (!n->is_integer()) fail(key, std::string("expected an integer, got ") + type_name(*n));
    const int64_t v = n->as_integer()->get();
    if (v < lo || v > hi)
      fail(key, "must be " + (hi == INT64_MAX ? ">= " + std::to_string(lo) : "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]") +
                    " (got " + std::to_string(v) + ")");
    out = v;
  }
  void integer(const std::string& key, int& out, int64_t lo, int64_t hi = INT32_MAX) {
    int64_t v = out;
    integer(key, v, lo, hi);
    out = int(v);
  }
  void number(const std::string& key, double& out, double lo, bool lo_open = false) {
    const toml::node* n = node(key);
    if (!n) return;
    if (!n->is_number()) fail(key, std::string("expected a number, got ") + type_name(*n));
    const double v = n->is_integer() ? double(n->as_integer()->get()) : n->as_floating_point()->get();
    if (!(lo_open ? v > lo : v >= lo) || !std::isfinite(v)) {
      std::ostringstream m;
      m << "must be a finite number " << (lo_open ? "> " : ">= ") << lo << " (got " << v << ")";
      fail(key, m.str());
    }
    out = v;
  }
  void boolean(const std::string& key, bool& out) {
    const toml::node* n = node(key);
    if (!n) return;
    if (!n->is_boolean()) fail(key, std::string("expected true or false, got ") + type_name(*n));
    out = n->as_boolean()->get();
  }
  std::string choice(const std::string& key, const std::string& current, const std::vector<std::string>& allowed) {
    const toml::node* n = node(key);
    if (!n) return current;
    if (!n->is_string()) fail(key, std::string("expected a string (one of: ") + join(allowed) + "), got " + type_name(*n));
    const std::string v = n->as_string()->get();
    if (std::find(allowed.begin(), allowed.end(), v) == allowed.end())
      fail(key, "'" + v + "' is not allowed (allowed: " + join(allowed) + ")");
    return v;
  }
  // An integer or a list of integers (per-layer keys); each >= lo.
  bool int_or_list(const std::string& key, std::vector<int>& out, int lo, bool allow_scalar = true) {
    const toml::node* n = node(key);
    if (!n) return false;
    const std::string what = allow_scalar ? "an integer or a list of integers" : "a list of integers";
    std::vector<int> v;
    if (n->is_integer() && allow_scalar) {
      v.push_back(int(n->as_integer()->get()));
    } else if (n->is_array()) {
      for (const auto& e : *n->as_array()) {
        if (!e.is_integer()) fail(key, "expected " + what + ", found " + type_name(e) + " in the list");
        v.push_back(int(e.as_integer()->get()));
      }
      if (v.empty()) fail(key, "the list is empty");
    } else {
      fail(key, "expected " + what + ", got " + type_name(*n));
    }
    for (int x : v)
      if (x < lo) fail(key, "every entry must be >= " + std::to_string(lo) + " (got " + std::to_string(x) + ")");
    out = v;
    return true;
  }
  void finish() const {
    if (!t_) return;
    for (const auto& [k, v] : *t_) {
      const std::string key(k.str());
      if (std::find(keys_.begin(), keys_.end(), key) == keys_.end())
        fail(key, "unknown key (allowed in " + (sec_.empty() ? std::string("the top level") : "[" + sec_ + "]") + ": " +
                      join(keys_) + ")");
    }
  }

 private:
  const toml::table* t_;
  std::string sec_;
  const Source& src_;
  std::vector<std::string> keys_;
};

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

template <class E>
E pick(const std::string& v, std::initializer_list<std::pair<const char*, E>> m) {
  for (const auto& [name, e] : m)
    if (v == name) return e;
  return m.begin()->second;
}

void per_layer(Reader& r, const std::string& key, std::vector<int>& v, int layers) {
  if (v.size() == 1) v.assign(size_t(layers), v[0]);
  if (int(v.size()) != layers)
    r.fail(key, "has " + std::to_string(v.size()) + " entries but model.layers = " + std::to_string(layers) +
                    " (give one entry per layer, or a single integer)");
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

  // [task]
  Reader t(section(root, "task", src), "task", src);
  TaskConfig& k = c.task;
  k.kind = t.choice("kind", k.kind, {"sparse_memory", "teacher_student_ntk", "teacher_student_model", "ar_forecast"});
  const bool ar = k.kind == "ar_forecast", teacher = k.kind.rfind("teacher_student", 0) == 0;
  t.integer("lag", k.lag, 1, 1 << 20);
  if (ar) k.seq_len = k.lag + 1;  // default window: exactly the lag plus the current value
  t.integer("seq_len", k.seq_len, 1, 1 << 20);
  t.integer("d_in", k.d_in, 1, 1 << 16);
  if (t.has("d") && t.has("d_in")) t.fail("d", "give task.d or task.d_in, not both");
  t.integer("d", k.d_in, 1, 1 << 16);
  t.integer("d_out", k.d_out, 1, 1 << 16);
  t.int_or_list("lags", k.lags, 0, false);
  k.readout = t.choice("readout", k.readout, {"linear", "mlp"});
  t.integer("hidden", k.hidden, 1, 1 << 16);
  t.integer("n_train", k.n_train, 0);
  t.integer("n_val", k.n_val, 1);
  t.integer("n_test", k.n_test, 0);
  t.integer("seed", k.seed, -1);
  t.integer("n", k.n, 0);
  t.number("val_fraction", k.val_fraction, 0.0, true);
  if (k.val_fraction >= 1.0) t.fail("val_fraction", "must be < 1");
  t.number("ar_coef", k.ar_coef, -1e9);
  t.number("noise", k.noise, 0.0, true);
  t.integer("burn_in", k.burn_in, 0);
  t.integer("time_channels", k.time_channels, 0, 16);
  t.integer("teacher_width", k.teacher_width, 2);
  t.integer("anchors", k.anchors, 1);
  t.number("nu", k.nu, 0.0, true);
  t.integer("teacher_samples", k.teacher_samples, 1);
  t.finish();
  if (t.has("n") && (t.has("n_train") || t.has("n_val")))
    t.fail("n", "give task.n (with task.val_fraction) or task.n_train/task.n_val, not both");
  if (k.n > 0) {  // n samples, split into training and validation sets
    k.n_val = std::max<int64_t>(1, std::llround(double(k.n) * k.val_fraction));
    k.n_train = k.n - k.n_val;
    if (k.n_train < 1) t.fail("n", "leaves no training sample after the validation split");
  }
  if (ar) {
    k.d_in = 1 + 2 * k.time_channels;
    if (k.lag >= k.seq_len) t.fail("lag", "must be < task.seq_len (" + std::to_string(k.seq_len) + ") so the window sees x_{t-L}");
  }
  if (teacher || ar) k.d_out = 1;
  if (k.kind == "sparse_memory")
    for (int lag : k.lags)
      if (lag >= k.seq_len)
        t.fail("lags", "lag " + std::to_string(lag) + " must be < task.seq_len (" + std::to_string(k.seq_len) + ")");

  // [model]
  Reader m(section(root, "model", src), "model", src);
  ModelConfig& mc = c.model;
  mc.kind = m.choice("kind", mc.kind, {"transformer", "shallow_attention", "indrnn", "rnn", "lstm"});
  m.integer("d_model", mc.d_model, 1, 1 << 16);
  m.integer("layers", mc.layers, 1, 1024);
  std::vector<int> heads = {4}, head_dim, value_dim, ffn;
  m.int_or_list("heads", heads, 1);
  per_layer(m, "heads", heads, mc.layers);
  if (m.int_or_list("head_dim", head_dim, 1)) {
    per_layer(m, "head_dim", head_dim, mc.layers);
  } else {
    for (int h : heads) head_dim.push_back(std::max(1, mc.d_model / h));
  }
  if (m.int_or_list("value_dim", value_dim, 1)) per_layer(m, "value_dim", value_dim, mc.layers);
  else value_dim = head_dim;
  ffn = {4 * mc.d_model};
  m.int_or_list("ffn", ffn, 0);
  per_layer(m, "ffn", ffn, mc.layers);
  mc.heads = heads; mc.head_dim = head_dim; mc.value_dim = value_dim; mc.ffn = ffn;
  mc.rpe = pick<Rpe>(m.choice("rpe", to_string(mc.rpe), {"none", "lin", "log", "t5"}),
                     {{"none", Rpe::none}, {"lin", Rpe::lin}, {"log", Rpe::log}, {"t5", Rpe::t5}});
  m.boolean("rpe_learnable", mc.rpe_learnable);
  m.integer("rpe_buckets", mc.rpe_buckets, 2, 1 << 16);
  m.integer("rpe_max_distance", mc.rpe_max_distance, 2);
  if (mc.rpe_max_distance <= mc.rpe_buckets / 2)
    m.fail("rpe_max_distance", "must be > rpe_buckets/2 (" + std::to_string(mc.rpe_buckets / 2) + ")");
  mc.pos = pick<Pos>(m.choice("pos", to_string(mc.pos), {"none", "sinusoidal", "learned"}),
                     {{"none", Pos::none}, {"sinusoidal", Pos::sinusoidal}, {"learned", Pos::learned}});
  m.boolean("dot_product", mc.dot_product);
  mc.norm = pick<Norm>(m.choice("norm", to_string(mc.norm), {"none", "layer", "rms"}),
                       {{"none", Norm::none}, {"layer", Norm::layer}, {"rms", Norm::rms}});
  m.number("score_scale", mc.score_scale, 0.0);
  mc.ffn_activation = pick<Act>(m.choice("ffn_activation", to_string(mc.ffn_activation), {"gelu", "relu", "tanh"}),
                                {{"gelu", Act::gelu}, {"relu", Act::relu}, {"tanh", Act::tanh}});
  m.integer("width", mc.width, 1, 1 << 20);
  mc.activation = m.choice("activation", mc.activation, {"tanh", "erf"});
  mc.init = m.choice("init", mc.init, {"symmetric", "iid"});
  mc.u_init = m.choice("u_init", mc.u_init, {"normal", "pm1.5"});
  if (mc.kind != "transformer" && mc.init == "symmetric" && mc.width % 2)
    m.fail("width", "must be even for init = \"symmetric\" (got " + std::to_string(mc.width) + ")");
  // Derived from the task; accepted (a resolved config is a valid input) but must agree.
  const int d_in = k.d_in, d_out = k.d_out, vocab = 0, max_len = k.seq_len;
  for (auto [key, want] : {std::pair<const char*, int>{"d_in", d_in}, {"d_out", d_out}, {"vocab", vocab}, {"max_len", max_len}}) {
    int got = want;
    m.integer(key, got, 0);
    if (got != want)
      m.fail(key, "is derived from the task and must be " + std::to_string(want) + " here (got " + std::to_string(got) + ")");
  }
  mc.d_in = d_in; mc.d_out = d_out; mc.vocab = vocab; mc.max_len = max_len;
  m.finish();

  // [train]
  Reader r(section(root, "train", src), "train", src);
  TrainConfig& tc = c.train;
  r.integer("steps", tc.steps, 1);
  r.integer("batch", tc.batch, 1, 1 << 20);
  tc.optimizer = r.choice("optimizer", tc.optimizer, {"sgd", "adamw", "gd", "projected_gd", "projected_sgd"});
  r.number("lr", tc.lr, 0.0, true);
  r.number("momentum", tc.momentum, 0.0);
  r.number("beta1", tc.beta1, 0.0);
  r.number("beta2", tc.beta2, 0.0);
  r.number("eps", tc.eps, 0.0, true);
  r.number("weight_decay", tc.weight_decay, 0.0);
  tc.lr_schedule = r.choice("lr_schedule", tc.lr_schedule, {"constant", "cosine", "inv_sqrt_total"});
  if (const toml::node* n = r.node("rho")) {
    const toml::array* a = n->as_array();
    if (!a || a->size() != 3) r.fail("rho", "expected a list of three numbers [rho_c, rho_u, rho_w]");
    for (const auto& e : *a) {
      if (!e.is_number()) r.fail("rho", std::string("expected numbers, found ") + type_name(e) + " in the list");
      const double v = e.is_integer() ? double(e.as_integer()->get()) : e.as_floating_point()->get();
      if (!(v > 0) || !std::isfinite(v)) r.fail("rho", "every radius must be a finite number > 0");
      tc.rho.push_back(v);
    }
  }
  r.integer("warmup", tc.warmup, 0);
  r.number("min_lr", tc.min_lr, 0.0);
  r.number("grad_clip", tc.grad_clip, 0.0);
  r.integer("eval_every", tc.eval_every, 1);
  r.integer("eval_batch", tc.eval_batch, 1, 1 << 20);
  const std::string want_loss = vocab > 0 ? "ce" : "mse";
  tc.loss = r.choice("loss", want_loss, {"mse", "half_mse", "ce"});
  if ((tc.loss == "ce") != (vocab > 0)) r.fail("loss", vocab > 0 ? "must be 'ce' for a token task" : "must be 'mse' or 'half_mse' for task " + k.kind);
  r.integer("threads", tc.threads, 0, 1024);
  r.boolean("probe_errors", tc.probe_errors);
  r.finish();
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
  auto ints = [](const std::vector<int>& v) {
    toml::array a;
    for (int x : v) a.push_back(int64_t(x));
    return a;
  };
  toml::table task{{"kind", c.task.kind}, {"seq_len", c.task.seq_len}, {"d_in", c.task.d_in}, {"d_out", c.task.d_out},
                   {"lags", ints(c.task.lags)}, {"readout", c.task.readout}, {"hidden", c.task.hidden},
                   {"n_train", c.task.n_train}, {"n_val", c.task.n_val}, {"n_test", c.task.n_test}, {"seed", c.task.seed},
                   {"lag", c.task.lag}, {"ar_coef", c.task.ar_coef}, {"noise", c.task.noise}, {"burn_in", c.task.burn_in},
                   {"time_channels", c.task.time_channels}, {"teacher_width", c.task.teacher_width},
                   {"anchors", c.task.anchors}, {"nu", c.task.nu}, {"teacher_samples", c.task.teacher_samples}};
  const ModelConfig& m = c.model;
  toml::table model{{"kind", m.kind}, {"d_model", m.d_model}, {"layers", m.layers}, {"heads", ints(m.heads)},
                    {"head_dim", ints(m.head_dim)}, {"value_dim", ints(m.value_dim)}, {"ffn", ints(m.ffn)},
                    {"rpe", to_string(m.rpe)}, {"rpe_learnable", m.rpe_learnable}, {"rpe_buckets", m.rpe_buckets},
                    {"rpe_max_distance", m.rpe_max_distance}, {"pos", to_string(m.pos)}, {"dot_product", m.dot_product},
                    {"norm", to_string(m.norm)}, {"score_scale", m.score_scale},
                    {"ffn_activation", to_string(m.ffn_activation)}, {"width", m.width}, {"activation", m.activation},
                    {"init", m.init}, {"u_init", m.u_init}, {"d_in", m.d_in}, {"d_out", m.d_out},
                    {"vocab", m.vocab}, {"max_len", m.max_len}};
  const TrainConfig& t = c.train;
  toml::table train{{"steps", t.steps}, {"batch", t.batch}, {"optimizer", t.optimizer}, {"lr", t.lr},
                    {"momentum", t.momentum}, {"beta1", t.beta1}, {"beta2", t.beta2}, {"eps", t.eps},
                    {"weight_decay", t.weight_decay}, {"lr_schedule", t.lr_schedule}, {"warmup", t.warmup},
                    {"min_lr", t.min_lr}, {"grad_clip", t.grad_clip}, {"eval_every", t.eval_every},
                    {"eval_batch", t.eval_batch}, {"loss", t.loss}, {"threads", t.threads}, {"probe_errors", t.probe_errors}};
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
