// parity_dump CONFIG OUTDIR [--tokens V] [--double] [key=value ...]
// Builds the model of CONFIG, moves its parameters off their initial values, runs one batch
// of the task forward and backward, and writes DIR/{model,batch,expected}.safetensors
// (docs/model.md) for tools/torch_reference.py (Transformer) or tools/torch_p3.py (paper-3
// models) to check. --tokens V swaps the input for random tokens of a vocab V; --double
// runs and writes everything in float64.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "kernels/loss.h"
#include "models/model.h"
#include "tasks/task.h"

using namespace attnlab;

template <class T>
void add(TensorFile& f, const std::string& name, std::vector<int64_t> shape, const T* data) {
  size_t n = 1;
  for (auto d : shape) n *= size_t(d);
  f.add(name, sizeof(T) == 8 ? "F64" : "F32", std::move(shape), data, n * sizeof(T));
}

template <class T>
void dump(RunConfig cfg, const std::string& dir, int vocab) {
  if (vocab > 0) { cfg.model.vocab = vocab; cfg.train.loss = "ce"; }
  std::filesystem::create_directories(dir);
  const int B = 3, Tn = cfg.task.seq_len;
  auto task = make_task(cfg.task, uint64_t(cfg.seed));
  auto m = make_model<T>(cfg.model, B);
  m->init(uint64_t(cfg.seed));
  for (size_t i = 0; i < m->arena.size(); ++i) m->arena.data()[i] += T(0.05 * rng_normal(7, 7, i));

  Batch b;
  const int64_t idx[B] = {0, 1, 2};
  task->fill(Split::train, idx, B, b);
  std::vector<int> tok(size_t(B) * Tn), tgt(size_t(B) * Tn);
  for (size_t i = 0; i < tok.size(); ++i) {
    tok[i] = int(rng_below(11, 1, i, uint64_t(std::max(vocab, 1))));
    tgt[i] = int(rng_below(11, 2, i, uint64_t(std::max(vocab, 1))));
  }
  std::vector<T> x(b.x.begin(), b.x.end()), y(b.y.begin(), b.y.end()), mask(b.mask.begin(), b.mask.end());
  const T* out = m->forward(vocab ? nullptr : x.data(), vocab ? tok.data() : nullptr, B, Tn);
  const int D = m->out_dim();
  const int P = m->last_only() ? 1 : Tn;  // outputs per sequence
  if (task->last_only() && !m->last_only()) throw UserError("parity_dump: per-sequence tasks need a per-sequence model");
  const int N = B * P;
  std::vector<T> dy(size_t(N) * D), outv(out, out + size_t(N) * D);
  T loss = T(vocab ? ce_forward_backward(dy.data(), out, tgt.data(), mask.data(), N, D)
                   : mse_forward_backward(dy.data(), out, y.data(), mask.data(), N, D));
  if (cfg.train.loss == "half_mse") {
    loss *= T(0.5);
    for (T& g : dy) g *= T(0.5);
  }
  m->arena.zero_grad();
  m->backward(dy.data());

  TensorFile mf;
  mf.metadata["format"] = "attnlab";
  mf.metadata["config"] = resolved_toml(cfg);
  for (const auto& p : m->arena.params()) add(mf, p.name, p.shape, m->arena.data().data() + p.offset);
  write_safetensors(dir + "/model.safetensors", mf);
  TensorFile bf;
  if (vocab) {
    bf.add("tokens", "I32", {B, Tn}, tok.data(), tok.size() * 4);
    bf.add("targets", "I32", {B, Tn}, tgt.data(), tgt.size() * 4);
  } else {
    add(bf, "x", {B, Tn, cfg.model.d_in}, x.data());
    add(bf, "y", {B, P, cfg.model.d_out}, y.data());
  }
  add(bf, "mask", {B, P}, mask.data());
  write_safetensors(dir + "/batch.safetensors", bf);
  TensorFile ef;
  add(ef, "out", {B, P, D}, outv.data());
  add(ef, "loss", {1}, &loss);
  for (const auto& p : m->arena.params()) add(ef, "grad." + p.name, p.shape, m->arena.grad().data() + p.offset);
  write_safetensors(dir + "/expected.safetensors", ef);
}

int main(int argc, char** argv) try {
  if (argc < 3) {
    std::fprintf(stderr, "usage: parity_dump CONFIG OUTDIR [--tokens V] [--double] [key=value ...]\n");
    return 2;
  }
  int vocab = 0;
  bool dbl = false;
  std::vector<std::string> ov;
  for (int i = 3; i < argc; ++i) {
    if (std::strcmp(argv[i], "--tokens") == 0 && i + 1 < argc) vocab = std::atoi(argv[++i]);
    else if (std::strcmp(argv[i], "--double") == 0) dbl = true;
    else ov.push_back(argv[i]);
  }
  const RunConfig cfg = load_run_config(argv[1], ov);
  if (dbl) dump<double>(cfg, argv[2], vocab);
  else dump<float>(cfg, argv[2], vocab);
  return 0;
} catch (const UserError& e) {
  std::fprintf(stderr, "parity_dump: %s\n", e.what());
  return 2;
}
