#include "train/predict.h"

#include <algorithm>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/npy.h"
#include "tasks/npy_task.h"
#include "train/evaluate.h"
#include "train/trainer.h"

namespace attnlab {

Predictor::Predictor(const std::string& ckpt, const std::vector<std::string>& overrides, int batch)
    : ckpt_(ckpt), overrides_(overrides), batch_(batch) {
  if (batch < 1) throw UserError("--batch: must be >= 1 (got " + std::to_string(batch) + ")");
  {
    NpyShapesFromConfig shapes_only;
    cfg_ = checkpoint_config(ckpt, overrides);
  }
  configure_threads(cfg_.train.threads);
  model_ = make_model<float>(cfg_.model, batch_);
  load_checkpoint(ckpt, model_->arena);
}

std::vector<float> Predictor::run(const float* x, const int* tok, const std::vector<int64_t>& shape, const std::string& where,
                                  std::vector<int64_t>* out_shape) {
  const std::string has = where.find(".npy") != std::string::npos ? "the file has" : "the array has";
  if (tokens()) {
    if (shape.size() != 2 || !tok)
      throw UserError(where + ": the model reads tokens: expected [N, T] of integers, " + has + (tok ? "" : " reals of") +
                      " rank " + std::to_string(shape.size()));
  } else if (shape.size() != 3 || shape[2] != cfg_.model.d_in || !x) {
    throw UserError(where + ": the model reads [N, T, " + std::to_string(cfg_.model.d_in) + "] real inputs, " + has +
                    (x ? "" : " integers of") + " rank " + std::to_string(shape.size()) +
                    (shape.size() == 3 ? " with d_in " + std::to_string(shape[2]) : std::string()));
  }
  const int64_t N = shape[0];
  if (N < 1 || shape[1] < 1) throw UserError(where + ": holds no sequence (N and T must be >= 1)");
  if (shape[1] > (1 << 20)) throw UserError(where + ": T = " + std::to_string(shape[1]) + " is beyond 2^20");
  const int T = int(shape[1]);
  if (tokens())
    for (size_t i = 0; i < size_t(N) * size_t(T); ++i)
      if (tok[i] < 0 || tok[i] >= cfg_.model.vocab)
        throw UserError(where + ": token " + std::to_string(tok[i]) + " at flat index " + std::to_string(i) +
                        " is outside the model's vocabulary [0, " + std::to_string(cfg_.model.vocab) + ")");
  // The model at this length: the trained one, or a copy built for T (another task.seq_len
  // carries model.max_len with it; learned positions refuse another length).
  Model<float>* m = model_.get();
  if (T != cfg_.task.seq_len) {
    if (other_T_ != T) {
      RunConfig c;
      {
        NpyShapesFromConfig shapes_only;
        std::vector<std::string> ov = overrides_;
        ov.push_back("task.seq_len=" + std::to_string(T));
        c = checkpoint_config(ckpt_, ov);
      }
      other_ = make_model<float>(c.model, batch_);
      if (other_->arena.size() != model_->arena.size())
        throw UserError(where + ": the model at T = " + std::to_string(T) + " has other parameters than at the trained length");
      other_T_ = T;
    }
    std::copy(model_->arena.data().begin(), model_->arena.data().end(), other_->arena.data().begin());
    m = other_.get();
  }
  const int O = m->out_dim();
  // One output per sequence: the model's own (last_only), or the last position's of a model
  // trained on per-sequence targets (task npy with [N, d_out] targets).
  const bool model_last = m->last_only(), last = model_last || (cfg_.task.kind == "npy" && cfg_.task.per_sequence);
  std::vector<float> y(size_t(N) * (last ? 1 : size_t(T)) * O);
  const size_t row_in = tokens() ? size_t(T) : size_t(T) * size_t(cfg_.model.d_in), row_out = (last ? 1 : size_t(T)) * O;
  for (int64_t s = 0; s < N; s += batch_) {
    const int b = int(std::min<int64_t>(batch_, N - s));
    const float* o = m->forward(tokens() ? nullptr : x + size_t(s) * row_in, tokens() ? tok + size_t(s) * row_in : nullptr, b, T);
    for (int i = 0; i < b; ++i)  // [b, T or 1, O] -> rows of row_out
      std::copy_n(o + (size_t(i) * (model_last ? 1 : size_t(T)) + (last && !model_last ? size_t(T - 1) : 0)) * O, row_out,
                  y.begin() + std::ptrdiff_t((size_t(s) + size_t(i)) * row_out));
  }
  *out_shape = last ? std::vector<int64_t>{N, O} : std::vector<int64_t>{N, T, O};
  return y;
}

PredictResult predict_npy(const std::string& ckpt, const std::vector<std::string>& overrides, const std::string& inputs,
                          const std::string& out, int batch) {
  if (batch < 1) throw UserError("--batch: must be >= 1 (got " + std::to_string(batch) + ")");
  const NpyArray x = read_npy(inputs, "--inputs");
  Predictor p(ckpt, overrides, int(std::min<int64_t>(batch, x.shape.empty() ? 1 : std::max<int64_t>(1, x.shape[0]))));
  const std::string where = inputs + " (--inputs)";
  std::vector<float> xf;
  std::vector<int> xt;
  if (p.tokens()) {
    if (!x.is_integer())
      throw UserError(where + ": the model reads tokens: expected [N, T] of integers, got " + x.dtype + " of rank " + std::to_string(x.shape.size()));
    for (double v : x.values)
      if (v < 0 || v >= p.config().model.vocab)  // checked here too: a double beyond int's range
        throw UserError(where + ": token " + std::to_string(int64_t(v)) + " is outside the model's vocabulary [0, " +
                        std::to_string(p.config().model.vocab) + ")");
    xt.assign(x.values.begin(), x.values.end());
  } else {
    xf.assign(x.values.begin(), x.values.end());
  }
  PredictResult r;
  const std::vector<float> y = p.run(xf.empty() ? nullptr : xf.data(), xt.empty() ? nullptr : xt.data(), x.shape, where, &r.shape);
  r.sequences = x.shape[0];
  write_npy_f32(out, r.shape, y.data());
  return r;
}

}  // namespace attnlab
