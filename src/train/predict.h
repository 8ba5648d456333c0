#pragma once
// `attnlab eval CKPT --inputs x.npy --predict out.npy`: a checkpoint's model applied to other
// inputs, its outputs written as .npy for other tools.
#include <string>
#include <vector>

namespace attnlab {

struct PredictResult {
  std::vector<int64_t> shape;  // of the written array
  int64_t sequences = 0;
};

// Reads inputs [N, T, d_in] (real) or [N, T] (tokens) checked against the checkpoint's model
// (T may differ from the trained length unless positions are learned), runs the model in
// chunks of `batch` sequences, and writes [N, T, out] (a prediction at every position; logits
// for a token model) or [N, out] (one per sequence) as float32, atomically.
PredictResult predict_npy(const std::string& ckpt, const std::vector<std::string>& overrides, const std::string& inputs,
                          const std::string& out, int batch);

}  // namespace attnlab
