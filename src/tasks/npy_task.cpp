#include "tasks/npy_task.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>

#include "core/error.h"
#include "io/file_cache.h"
#include "io/npy.h"

namespace attnlab {

namespace fs = std::filesystem;

struct NpyData {
  int64_t n_train = 0, n_val = 0;
  int T = 0, d_in = 0, d_out = 0, vocab = 0;
  bool per_sequence = false;
  std::vector<float> x[2], y[2];     // real inputs and targets, per split (train, val)
  std::vector<int> tok[2], tgt[2];   // token inputs and targets
};

namespace {

thread_local int g_shapes_from_config = 0;

std::string shape_str(const std::vector<int64_t>& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

// Loads and checks the files; `fail(key, message)` reports bad input at task.KEY.
using Fail = std::function<void(const std::string&, const std::string&)>;

struct Pair {
  NpyArray x, y;
};

void check_pair(const Pair& p, const std::string& xk, const std::string& yk, const std::string& xpath, const std::string& ypath,
                const Fail& fail) {
  const auto& xs = p.x.shape;
  const auto& ys = p.y.shape;
  const bool tokens = xs.size() == 2;
  if (!(xs.size() == 3 || (xs.size() == 2 && p.x.is_integer())))
    fail(xk, xpath + " has shape " + shape_str(xs) + " of " + p.x.dtype + ": expected [N, T, d_in] (real inputs) or [N, T] of integers (tokens)");
  if (xs[0] < 1 || xs[1] < 1 || (!tokens && xs[2] < 1)) fail(xk, xpath + " has shape " + shape_str(xs) + ": every dimension must be >= 1");
  if (ys.empty() || ys[0] != xs[0])
    fail(yk, ypath + " has " + (ys.empty() ? std::string("no rows (a scalar)") : std::to_string(ys[0]) + " rows") + ", task." + xk + " has " +
                 std::to_string(xs[0]));
  if (tokens) {
    if (!(ys.size() == 2 && p.y.is_integer() && ys[1] == xs[1]))
      fail(yk, ypath + " has shape " + shape_str(ys) + " of " + p.y.dtype + ": token inputs [N, T] = " + shape_str(xs) +
                   " need integer targets of the same shape");
  } else {
    const bool per_pos = ys.size() == 3 && ys[1] == xs[1];
    const bool per_seq = ys.size() == 2 || ys.size() == 1;
    if (!per_pos && !per_seq)
      fail(yk, ypath + " has shape " + shape_str(ys) + ": inputs " + shape_str(xs) + " need targets [" + std::to_string(xs[0]) + ", " +
                   std::to_string(xs[1]) + ", d_out] (one per position) or [" + std::to_string(xs[0]) + ", d_out] (one per sequence)");
    if ((ys.size() == 3 && ys[2] < 1) || (ys.size() == 2 && ys[1] < 1)) fail(yk, ypath + " has shape " + shape_str(ys) + ": d_out must be >= 1");
  }
  if (tokens)
    for (const auto* a : {&p.x, &p.y})
      for (size_t i = 0; i < a->values.size(); ++i)
        if (a->values[i] < 0 || a->values[i] >= double(1 << 24))
          fail(a == &p.x ? xk : yk, (a == &p.x ? xpath : ypath) + ": token " + std::to_string(int64_t(a->values[i])) + " at flat index " +
                                        std::to_string(i) + " is outside [0, 2^24)");
}

void copy_rows(const NpyArray& a, int64_t from, int64_t n, bool as_int, std::vector<float>& f, std::vector<int>& v) {
  const size_t row = a.shape.size() > 1 ? a.numel() / size_t(a.shape[0]) : 1;
  const auto b = a.values.begin() + std::ptrdiff_t(size_t(from) * row), e = b + std::ptrdiff_t(size_t(n) * row);
  if (as_int) v.assign(b, e);  // (exact: token values were checked to be integers < 2^24)
  else f.assign(b, e);
}

std::shared_ptr<const NpyData> read_data(const TaskConfig& c, const Fail& fail) {
  auto d = std::make_shared<NpyData>();
  Pair tr{read_npy(c.npy_inputs, "task.inputs"), read_npy(c.npy_targets, "task.targets")};
  check_pair(tr, "inputs", "targets", c.npy_inputs, c.npy_targets, fail);
  const bool tokens = tr.x.shape.size() == 2;
  d->T = int(tr.x.shape[1]);
  d->d_in = tokens ? 0 : int(tr.x.shape[2]);
  d->per_sequence = !tokens && tr.y.shape.size() < 3;
  d->d_out = tokens ? 1 : tr.y.shape.size() == 1 ? 1 : int(tr.y.shape.back());
  const int64_t N = tr.x.shape[0];
  Pair va;
  int64_t val_from = 0;
  if (!c.npy_val_inputs.empty()) {
    va = {read_npy(c.npy_val_inputs, "task.val_inputs"), read_npy(c.npy_val_targets, "task.val_targets")};
    check_pair(va, "val_inputs", "val_targets", c.npy_val_inputs, c.npy_val_targets, fail);
    auto tail = [](const std::vector<int64_t>& s) { return std::vector<int64_t>(s.begin() + 1, s.end()); };
    if (tail(va.x.shape) != tail(tr.x.shape))
      fail("val_inputs", c.npy_val_inputs + " has shape " + shape_str(va.x.shape) + ", but task.inputs has " + shape_str(tr.x.shape) +
                             " (the same shape after the first dimension is needed)");
    if (tail(va.y.shape) != tail(tr.y.shape))
      fail("val_targets", c.npy_val_targets + " has shape " + shape_str(va.y.shape) + ", but task.targets has " + shape_str(tr.y.shape) +
                              " (the same shape after the first dimension is needed)");
    d->n_train = N;
    d->n_val = va.x.shape[0];
  } else {
    d->n_val = std::max<int64_t>(1, std::llround(double(N) * c.val_fraction));
    d->n_train = N - d->n_val;
    if (d->n_train < 1)
      fail("inputs", c.npy_inputs + " has " + std::to_string(N) + " rows: none is left for training after the validation split (task.val_fraction = " +
                         std::to_string(c.val_fraction) + "; or give task.val_inputs and task.val_targets)");
    val_from = d->n_train;
  }
  copy_rows(tr.x, 0, d->n_train, tokens, d->x[0], d->tok[0]);
  copy_rows(tr.y, 0, d->n_train, tokens, d->y[0], d->tgt[0]);
  const Pair& vsrc = c.npy_val_inputs.empty() ? tr : va;
  copy_rows(vsrc.x, val_from, d->n_val, tokens, d->x[1], d->tok[1]);
  copy_rows(vsrc.y, val_from, d->n_val, tokens, d->y[1], d->tgt[1]);
  if (tokens) {
    int mx = 0;
    for (int s = 0; s < 2; ++s)
      for (const auto* v : {&d->tok[s], &d->tgt[s]})
        for (int t : *v) mx = std::max(mx, t);
    d->vocab = mx + 1;
  }
  return d;
}

// The files' contents, read once while they stay unchanged (resolution, then the task).
std::shared_ptr<const NpyData> load(const TaskConfig& c, const Fail& fail) {
  static FileCache<NpyData> cache;
  return cache.get(std::to_string(c.val_fraction), {c.npy_inputs, c.npy_targets, c.npy_val_inputs, c.npy_val_targets},
                   [&] { return read_data(c, fail); });
}

std::string absolute(const std::string& p) { return p.empty() ? p : fs::absolute(p).lexically_normal().string(); }

}  // namespace

NpyShapesFromConfig::NpyShapesFromConfig() { ++g_shapes_from_config; }
NpyShapesFromConfig::~NpyShapesFromConfig() { --g_shapes_from_config; }

NpyTask::NpyTask(const TaskConfig& cfg) : cfg_(cfg) {
  data_ = load(cfg, [](const std::string& key, const std::string& msg) { throw UserError("task." + key + ": " + msg); });
  if (data_->T != cfg.seq_len || data_->n_train != cfg.n_train || data_->n_val != cfg.n_val)
    throw UserError("task.inputs: " + cfg.npy_inputs + " has changed since the config was resolved (shape or rows)");
}

NpyTask::~NpyTask() = default;

void NpyTask::fill(Split split, const int64_t* indices, int B, Batch& batch) const {
  if (split == Split::test) throw UserError("task.n_test: task 'npy' has no test split");
  const int s = int(split), T = data_->T;
  const int64_t rows = s == 0 ? data_->n_train : data_->n_val;
  if (data_->vocab > 0) {
    batch.B = B;
    batch.T = T;
    batch.x.clear();
    batch.y.clear();
    batch.shared_from = -1;
    batch.tokens.resize(size_t(B) * T);
    batch.targets.resize(size_t(B) * T);
    batch.mask.assign(size_t(B) * T, 1.f);
    for (int b = 0; b < B; ++b) {
      const size_t r = size_t(indices[b] % rows) * size_t(T);
      std::copy_n(data_->tok[s].begin() + std::ptrdiff_t(r), T, batch.tokens.begin() + std::ptrdiff_t(size_t(b) * T));
      std::copy_n(data_->tgt[s].begin() + std::ptrdiff_t(r), T, batch.targets.begin() + std::ptrdiff_t(size_t(b) * T));
    }
    return;
  }
  const int D = data_->d_in, O = data_->d_out;
  const size_t yrow = data_->per_sequence ? size_t(O) : size_t(T) * O;
  batch.shape_real(B, T, D, size_t(B) * yrow, data_->per_sequence ? size_t(B) : size_t(B) * T, 1.f);
  for (int b = 0; b < B; ++b) {
    const size_t r = size_t(indices[b] % rows);
    std::copy_n(data_->x[s].begin() + std::ptrdiff_t(r * T * D), size_t(T) * D, batch.x.begin() + std::ptrdiff_t(size_t(b) * T * D));
    std::copy_n(data_->y[s].begin() + std::ptrdiff_t(r * yrow), yrow, batch.y.begin() + std::ptrdiff_t(size_t(b) * yrow));
  }
}

void npy_keys(Keys& k, TaskConfig& c) {
  k.text("inputs", c.npy_inputs);
  k.text("targets", c.npy_targets);
  k.text("val_inputs", c.npy_val_inputs);
  k.text("val_targets", c.npy_val_targets);
  // Derived from the files (a config may give them; they must agree).
  const bool has_d_in = k.has("d_in"), has_d_out = k.has("d_out"), has_vocab = k.has("vocab"), has_ps = k.has("per_sequence");
  k.integer("d_in", c.d_in, 0, 1 << 20);
  k.integer("d_out", c.d_out, 1, 1 << 20);
  k.integer("vocab", c.vocab, 0, 1 << 24);
  k.boolean("per_sequence", c.per_sequence);
  if (!k.reading()) return;
  if (c.npy_inputs.empty()) k.fail("inputs", "task 'npy' needs the path of an .npy file: [N, T, d_in] (real inputs) or [N, T] (integer tokens)");
  if (c.npy_targets.empty()) k.fail("targets", "task 'npy' needs the path of an .npy file: [N, T, d_out], [N, d_out] or [N, T] (tokens)");
  if (c.npy_val_inputs.empty() != c.npy_val_targets.empty())
    k.fail(c.npy_val_inputs.empty() ? "val_targets" : "val_inputs", "give both task.val_inputs and task.val_targets, or neither");
  if (c.n_test > 0) k.fail("n_test", "task 'npy' has no test split (n_test must be 0)");
  for (std::string* p : {&c.npy_inputs, &c.npy_targets, &c.npy_val_inputs, &c.npy_val_targets}) *p = absolute(*p);
  if (g_shapes_from_config > 0) return;  // a checkpoint's config: its derived values describe the model
  const auto d = load(c, [&](const std::string& key, const std::string& msg) { k.fail(key, msg); });
  auto agree = [&](bool has, const char* key, int64_t got, int64_t want) {
    if (has && got != want)
      k.fail(key, "is derived from the data and must be " + std::to_string(want) + " here (got " + std::to_string(got) + ")");
  };
  agree(has_d_in, "d_in", c.d_in, d->d_in);
  agree(has_d_out, "d_out", c.d_out, d->d_out);
  agree(has_vocab, "vocab", c.vocab, d->vocab);
  agree(has_ps, "per_sequence", c.per_sequence, d->per_sequence);
  agree(k.has("seq_len"), "seq_len", c.seq_len, d->T);
  agree(k.has("n_train"), "n_train", c.n_train, d->n_train);
  agree(k.has("n_val"), "n_val", c.n_val, d->n_val);
  c.d_in = d->d_in;
  c.d_out = d->d_out;
  c.vocab = d->vocab;
  c.per_sequence = d->per_sequence;
  c.seq_len = d->T;
  c.n_train = d->n_train;
  c.n_val = d->n_val;
}

}  // namespace attnlab
