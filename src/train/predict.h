#pragma once
// A checkpoint's model applied to other inputs: `attnlab eval CKPT --inputs x.npy --predict
// out.npy` and the Python module's Model.forward.
#include <memory>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/run_config.h"
#include "models/model.h"

namespace attnlab {

// The model of a checkpoint (its config from the checkpoint's metadata, with overrides), its
// parameters loaded. A task.kind = "npy" run's data files are not needed (NpyShapesFromConfig).
class Predictor {
 public:
  // `batch`: sequences per forward pass (inputs are run in chunks of it).
  Predictor(const std::string& ckpt, const std::vector<std::string>& overrides, int batch);
  const RunConfig& config() const { return cfg_; }
  bool tokens() const { return cfg_.model.vocab > 0; }
  // The parameters (of the model at the trained length; other lengths copy them).
  Arena<float>& arena() { return model_->arena; }
  // Outputs for inputs of shape `shape`: [N, T, d_in] reals in x, or [N, T] tokens in tok,
  // checked against the model (T may differ from the trained length unless positions are
  // learned; `where` names the inputs in errors). Returns [N, T, out] (a prediction at every
  // position; logits for a token model) or [N, out] (one per sequence), its shape in *out_shape.
  std::vector<float> run(const float* x, const int* tok, const std::vector<int64_t>& shape, const std::string& where,
                         std::vector<int64_t>* out_shape);

 private:
  std::string ckpt_;
  std::vector<std::string> overrides_;
  int batch_;
  RunConfig cfg_;
  std::unique_ptr<Model<float>> model_;  // at the trained length
  std::unique_ptr<Model<float>> other_;  // at other_T_ (a copy of model_'s parameters)
  int other_T_ = -1;
};

struct PredictResult {
  std::vector<int64_t> shape;  // of the written array
  int64_t sequences = 0;
};

// Reads inputs [N, T, d_in] (real) or [N, T] (tokens), runs the checkpoint's model in chunks
// of `batch` sequences, and writes its outputs (Predictor::run) as float32 .npy, atomically.
PredictResult predict_npy(const std::string& ckpt, const std::vector<std::string>& overrides, const std::string& inputs,
                          const std::string& out, int batch);

}  // namespace attnlab
