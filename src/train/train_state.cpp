#include "train/train_state.h"

#include <cmath>
#include <cstring>
#include <utility>

#include "core/error.h"
#include "io/checkpoint.h"

namespace attnlab {

namespace {

constexpr const char* kFormat = "attnlab-train-state-1";

// Scalars are stored as one-element F64/I64 tensors: bit-exact, NaN and infinity included.
void put(TensorFile& f, const std::string& name, double v) { f.add("state." + name, "F64", {1}, &v, 8); }
void put(TensorFile& f, const std::string& name, int64_t v) { f.add("state." + name, "I64", {1}, &v, 8); }
void put(TensorFile& f, const std::string& name, const std::vector<double>& v) {
  f.add("state." + name, "F64", {int64_t(v.size())}, v.data(), v.size() * 8);
}

const Tensor& need(const TensorFile& f, const std::string& path, const std::string& name, const char* dtype, size_t n) {
  auto it = f.tensors.find(name);
  if (it == f.tensors.end()) throw UserError(path + ": tensor '" + name + "' is missing (not a complete training checkpoint)");
  if (it->second.dtype != dtype) throw UserError(path + ": tensor '" + name + "' has dtype " + it->second.dtype + ", expected " + dtype);
  if (it->second.numel() != n)
    throw UserError(path + ": tensor '" + name + "' has " + std::to_string(it->second.numel()) + " values, expected " +
                    std::to_string(n) + " for this config");
  return it->second;
}
template <class T>
void get(const TensorFile& f, const std::string& path, const std::string& name, T& v) {
  std::memcpy(&v, need(f, path, "state." + name, std::is_same_v<T, double> ? "F64" : "I64", 1).bytes.data(), 8);
}
void get(const TensorFile& f, const std::string& path, const std::string& name, std::vector<double>& v) {
  const Tensor& t = need(f, path, "state." + name, "F64", v.size());
  if (!v.empty()) std::memcpy(v.data(), t.bytes.data(), v.size() * 8);  // (a model with no probe groups: empty)
}

TensorFile read_state_file(const std::string& path) {
  TensorFile f = read_safetensors(path);
  auto it = f.metadata.find("format");
  if (it == f.metadata.end() || it->second != kFormat)
    throw UserError(path + ": not an attnlab training checkpoint (metadata format is '" +
                    (it == f.metadata.end() ? std::string() : it->second) + "', expected '" + kFormat + "')");
  if (!f.metadata.count("config")) throw UserError(path + ": the checkpoint has no config in its metadata");
  return f;
}

}  // namespace

void save_train_state(const std::string& path, const TrainState& s, const Arena<float>& arena, const Optimizer& opt,
                      const std::string& resolved_config) {
  TensorFile f;
  f.metadata["format"] = kFormat;
  f.metadata["config"] = resolved_config;
  f.metadata["probes"] = s.probes.dump();
  add_parameters(f, arena);
  opt.save(f);
  put(f, "step", s.step);
  put(f, "window_n", s.window_n);
  put(f, "best_val_step", s.best_val_step);
  put(f, "blocks", s.blocks);
  put(f, "proj_active", s.proj_active);
  put(f, "max_gnorm", s.max_gnorm);
  put(f, "first_loss", s.first_loss);
  put(f, "train_time", s.train_time);
  put(f, "window_loss", s.window_loss);
  put(f, "last_train", s.last_train);
  put(f, "last_val", s.last_val);
  put(f, "min_val", s.min_val);
  put(f, "min_train", s.min_train);
  put(f, "target_var", s.target_var);
  put(f, "gmax_window", s.gmax_window);
  put(f, "gmax_all", s.gmax_all);
  put(f, "block_max", s.block_max);
  put(f, "block_sum", s.block_sum);
  put(f, "block_first", s.block_first);
  put(f, "block_last", s.block_last);
  put(f, "avg", s.avg);
  if (!s.theta0.empty()) f.add_f32("state.theta0", {int64_t(s.theta0.size())}, s.theta0.data());
  write_safetensors(path, f);
}

std::string train_state_config(const std::string& path) { return read_state_file(path).metadata.at("config"); }

void load_train_state(const std::string& path, TrainState& s, Arena<float>& arena, Optimizer& opt) {
  const TensorFile f = read_state_file(path);
  load_parameters(f, path, arena);
  opt.load(f, path);
  get(f, path, "step", s.step);
  get(f, path, "window_n", s.window_n);
  get(f, path, "best_val_step", s.best_val_step);
  get(f, path, "blocks", s.blocks);
  // Checkpoints written before this statistic existed lack it: the count is then unknown (the
  // summary says null), not silently restarted from 0.
  if (f.tensors.count("state.proj_active")) get(f, path, "proj_active", s.proj_active);
  else s.proj_active = -1;
  get(f, path, "max_gnorm", s.max_gnorm);
  get(f, path, "first_loss", s.first_loss);
  get(f, path, "train_time", s.train_time);
  get(f, path, "window_loss", s.window_loss);
  get(f, path, "last_train", s.last_train);
  get(f, path, "last_val", s.last_val);
  get(f, path, "min_val", s.min_val);
  get(f, path, "min_train", s.min_train);
  get(f, path, "target_var", s.target_var);
  get(f, path, "gmax_window", s.gmax_window);
  get(f, path, "gmax_all", s.gmax_all);
  get(f, path, "block_max", s.block_max);
  get(f, path, "block_sum", s.block_sum);
  // Added after the format's first checkpoints: absent, they are unknown (null in the summary).
  for (auto [name, v] : {std::pair{"block_first", &s.block_first}, std::pair{"block_last", &s.block_last}}) {
    if (f.tensors.count(std::string("state.") + name)) get(f, path, name, *v);
    else std::fill(v->begin(), v->end(), NAN);
  }
  get(f, path, "avg", s.avg);
  if (!s.theta0.empty()) {
    const Tensor& t = need(f, path, "state.theta0", "F32", s.theta0.size());
    std::memcpy(s.theta0.data(), t.bytes.data(), s.theta0.size() * 4);
  }
  if (s.step < 0 || s.window_n < 0 || s.blocks < 0) throw UserError(path + ": tensor 'state.step' (or a count) is negative");
  try {
    s.probes = nlohmann::ordered_json::parse(f.metadata.count("probes") ? f.metadata.at("probes") : "{}");
  } catch (const nlohmann::json::exception&) {
    throw UserError(path + ": metadata 'probes' is not JSON");
  }
  if (!s.probes.is_object()) throw UserError(path + ": metadata 'probes' is not a JSON object");
}

}  // namespace attnlab
