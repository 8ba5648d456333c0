#include "io/checkpoint.h"

#include <cmath>
#include <cstring>

#include "core/error.h"

namespace attnlab {

void save_checkpoint(const std::string& path, const Arena<float>& arena, const std::string& resolved_config) {
  TensorFile f;
  f.metadata["format"] = "attnlab";
  f.metadata["config"] = resolved_config;
  add_parameters(f, arena);
  write_safetensors(path, f);
}

void add_parameters(TensorFile& f, const Arena<float>& arena) {
  for (const auto& p : arena.params()) f.add_f32(p.name, p.shape, arena.data().data() + p.offset);
}

void load_parameters(const TensorFile& f, const std::string& path, Arena<float>& arena) {
  for (const auto& p : arena.params()) {
    auto it = f.tensors.find(p.name);
    if (it == f.tensors.end()) throw UserError(path + ": tensor '" + p.name + "' is missing (does the checkpoint match the config?)");
    if (it->second.shape != p.shape) throw UserError(path + ": tensor '" + p.name + "' has the wrong shape for this config");
    auto v = it->second.as_f32(path + ": tensor '" + p.name + "'");
    for (size_t j = 0; j < v.size(); ++j)
      if (!std::isfinite(v[j]))
        throw UserError(path + ": tensor '" + p.name + "' holds a non-finite value at flat index " + std::to_string(j));
    std::memcpy(arena.data().data() + p.offset, v.data(), v.size() * sizeof(float));
  }
}

void load_checkpoint(const std::string& path, Arena<float>& arena) {
  TensorFile f = read_safetensors(path);
  load_parameters(f, path, arena);
  if (f.tensors.size() != arena.params().size())
    throw UserError(path + ": holds " + std::to_string(f.tensors.size()) + " tensors, the model has " +
                    std::to_string(arena.params().size()));
}

}  // namespace attnlab
