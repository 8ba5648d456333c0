#include "train/predict.h"

#include <algorithm>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/npy.h"
#include "models/model.h"
#include "tasks/npy_task.h"
#include "train/evaluate.h"
#include "train/trainer.h"

namespace attnlab {

PredictResult predict_npy(const std::string& ckpt, const std::vector<std::string>& overrides, const std::string& inputs,
                          const std::string& out, int batch) {
  if (batch < 1) throw UserError("--batch: must be >= 1 (got " + std::to_string(batch) + ")");
  const NpyArray x = read_npy(inputs, "--inputs");
  // The model of the checkpoint, at the inputs' length; a task.kind = "npy" run's data files
  // are not needed for that (NpyShapesFromConfig).
  RunConfig cfg;
  {
    NpyShapesFromConfig shapes_only;
    cfg = checkpoint_config(ckpt, overrides);
    if (x.shape.size() >= 2 && x.shape[1] != cfg.task.seq_len && x.shape[1] >= 1 && x.shape[1] <= (1 << 20)) {
      std::vector<std::string> ov = overrides;
      ov.push_back("task.seq_len=" + std::to_string(x.shape[1]));
      cfg = checkpoint_config(ckpt, ov);
    }
  }
  const bool tokens = cfg.model.vocab > 0;
  const std::string where = inputs + " (--inputs)";
  if (tokens) {
    if (x.shape.size() != 2 || !x.is_integer())
      throw UserError(where + ": the model reads tokens: expected [N, T] of integers, got " + x.dtype + " of rank " + std::to_string(x.shape.size()));
    for (size_t i = 0; i < x.values.size(); ++i)
      if (x.values[i] < 0 || x.values[i] >= cfg.model.vocab)
        throw UserError(where + ": token " + std::to_string(int64_t(x.values[i])) + " at flat index " + std::to_string(i) +
                        " is outside the model's vocabulary [0, " + std::to_string(cfg.model.vocab) + ")");
  } else if (x.shape.size() != 3 || x.shape[2] != cfg.model.d_in) {
    throw UserError(where + ": the model reads [N, T, " + std::to_string(cfg.model.d_in) + "] real inputs, the file has rank " +
                    std::to_string(x.shape.size()) + (x.shape.size() == 3 ? " with d_in " + std::to_string(x.shape[2]) : std::string()));
  }
  const int64_t N = x.shape[0];
  const int T = int(x.shape[1]);
  if (N < 1 || T < 1) throw UserError(where + ": holds no sequence (N and T must be >= 1)");
  configure_threads(cfg.train.threads);
  const int B = int(std::min<int64_t>(batch, N));
  auto model = make_model<float>(cfg.model, B);
  load_checkpoint(ckpt, model->arena);
  const int O = model->out_dim();
  // One output per sequence: the model's own (last_only), or the last position's of a model
  // trained on per-sequence targets (task npy with [N, d_out] targets).
  const bool model_last = model->last_only(), last = model_last || (cfg.task.kind == "npy" && cfg.task.per_sequence);
  std::vector<float> y(size_t(N) * (last ? 1 : size_t(T)) * O);
  const size_t row_in = tokens ? size_t(T) : size_t(T) * size_t(cfg.model.d_in), row_out = (last ? 1 : size_t(T)) * O;
  std::vector<float> xb;
  std::vector<int> tb;
  for (int64_t s = 0; s < N; s += B) {
    const int b = int(std::min<int64_t>(B, N - s));
    const auto from = x.values.begin() + std::ptrdiff_t(size_t(s) * row_in), to = from + std::ptrdiff_t(size_t(b) * row_in);
    if (tokens) tb.assign(from, to);
    else xb.assign(from, to);
    const float* o = model->forward(tokens ? nullptr : xb.data(), tokens ? tb.data() : nullptr, b, T);
    for (int i = 0; i < b; ++i)  // [b, T or 1, O] -> rows of row_out
      std::copy_n(o + (size_t(i) * (model_last ? 1 : size_t(T)) + (last && !model_last ? size_t(T - 1) : 0)) * O, row_out,
                  y.begin() + std::ptrdiff_t((size_t(s) + size_t(i)) * row_out));
  }
  PredictResult r;
  r.shape = last ? std::vector<int64_t>{N, O} : std::vector<int64_t>{N, T, O};
  r.sequences = N;
  write_npy_f32(out, r.shape, y.data());
  return r;
}

}  // namespace attnlab
