// The model registry: one line per model family.
#include "models/model.h"

#include "core/error.h"
#include "models/lstm.h"
#include "models/rnn.h"
#include "models/shallow_attention.h"
#include "models/transformer.h"

namespace attnlab {

template <class T>
std::unique_ptr<Model<T>> make_model(const ModelConfig& cfg, int max_batch) {
  if (cfg.kind == "transformer") return std::make_unique<Transformer<T>>(cfg, max_batch);
  if (cfg.kind == "shallow_attention") return std::make_unique<ShallowAttention<T>>(cfg, max_batch);
  if (cfg.kind == "indrnn" || cfg.kind == "rnn") return std::make_unique<Rnn<T>>(cfg, max_batch);
  if (cfg.kind == "lstm") return std::make_unique<Lstm<T>>(cfg, max_batch);
  throw UserError("model.kind: unknown model '" + cfg.kind + "'");
}

template std::unique_ptr<Model<float>> make_model(const ModelConfig&, int);
template std::unique_ptr<Model<double>> make_model(const ModelConfig&, int);

}  // namespace attnlab
