// parity_dump CONFIG OUTDIR [--tokens V] [key=value ...]
// Builds the model of CONFIG, moves its parameters off their initial values, runs one batch
// forward and backward, and writes DIR/{model,batch,expected}.safetensors (docs/model.md) for
// tools/torch_reference.py to check. --tokens V swaps the input for random tokens of a vocab V.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "kernels/loss.h"
#include "models/transformer.h"
#include "tasks/task.h"

using namespace attnlab;

int main(int argc, char** argv) try {
  if (argc < 3) {
    std::fprintf(stderr, "usage: parity_dump CONFIG OUTDIR [--tokens V] [key=value ...]\n");
    return 2;
  }
  const std::string dir = argv[2];
  int vocab = 0;
  std::vector<std::string> ov;
  for (int i = 3; i < argc; ++i) {
    if (std::strcmp(argv[i], "--tokens") == 0 && i + 1 < argc) vocab = std::atoi(argv[++i]);
    else ov.push_back(argv[i]);
  }
  RunConfig cfg = load_run_config(argv[1], ov);
  if (vocab > 0) { cfg.model.vocab = vocab; cfg.train.loss = "ce"; }
  std::filesystem::create_directories(dir);
  const int B = 3, T = cfg.task.seq_len;
  Transformer<float> m(cfg.model, B);
  m.init(uint64_t(cfg.seed));
  for (size_t i = 0; i < m.arena.size(); ++i) m.arena.data()[i] += float(0.05 * rng_normal(7, 7, i));

  auto task = make_task(cfg.task, uint64_t(cfg.seed));
  Batch b;
  const int64_t idx[B] = {0, 1, 2};
  task->fill(Split::train, idx, B, b);
  std::vector<int> tok(size_t(B) * T), tgt(size_t(B) * T);
  for (size_t i = 0; i < tok.size(); ++i) {
    tok[i] = int(rng_below(11, 1, i, uint64_t(std::max(vocab, 1))));
    tgt[i] = int(rng_below(11, 2, i, uint64_t(std::max(vocab, 1))));
  }
  const float* out = m.forward(vocab ? nullptr : b.x.data(), vocab ? tok.data() : nullptr, B, T);
  const int D = m.out_dim(), N = B * T;
  std::vector<float> dy(size_t(N) * D), outv(out, out + size_t(N) * D);
  const float loss = float(vocab ? ce_forward_backward(dy.data(), out, tgt.data(), b.mask.data(), N, D)
                                 : mse_forward_backward(dy.data(), out, b.y.data(), b.mask.data(), N, D));
  m.arena.zero_grad();
  m.backward(dy.data());

  save_checkpoint(dir + "/model.safetensors", m.arena, resolved_toml(cfg));
  TensorFile bf;
  if (vocab) {
    bf.add("tokens", "I32", {B, T}, tok.data(), tok.size() * 4);
    bf.add("targets", "I32", {B, T}, tgt.data(), tgt.size() * 4);
  } else {
    bf.add_f32("x", {B, T, cfg.model.d_in}, b.x.data());
    bf.add_f32("y", {B, T, cfg.model.d_out}, b.y.data());
  }
  bf.add_f32("mask", {B, T}, b.mask.data());
  write_safetensors(dir + "/batch.safetensors", bf);
  TensorFile ef;
  ef.add_f32("out", {B, T, D}, outv.data());
  ef.add_f32("loss", {1}, &loss);
  for (const auto& p : m.arena.params()) ef.add_f32("grad." + p.name, p.shape, m.arena.grad().data() + p.offset);
  write_safetensors(dir + "/expected.safetensors", ef);
  return 0;
} catch (const UserError& e) {
  std::fprintf(stderr, "parity_dump: %s\n", e.what());
  return 2;
}
