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

const std::vector<KindKeys<ModelConfig>>& model_kinds() {
  static const std::vector<KindKeys<ModelConfig>> kinds = {
      {"transformer", transformer_keys}, {"shallow_attention", shallow_attention_keys}, {"indrnn", indrnn_keys},
      {"rnn", rnn_keys}, {"lstm", lstm_keys}};
  return kinds;
}

void width_keys(Keys& k, ModelConfig& m, bool activation) {
  k.integer("width", m.width, 1, 1 << 20);  // m: heads (shallow) or hidden units (RNNs)
  if (activation) k.choice("activation", m.activation, {"tanh", "erf"});  // sigma: tanh | erf(x / sqrt 2)
  k.choice("init", m.init, {"symmetric", "iid"});  // symmetric: f = 0 at init (m even) | iid
  if (k.reading() && m.init == "symmetric" && m.width % 2)
    k.fail("width", "must be even for init = \"symmetric\" (got " + std::to_string(m.width) + ")");
}

}  // namespace attnlab
