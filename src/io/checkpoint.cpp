#include "io/checkpoint.h"

#include <cstring>

#include "core/error.h"

namespace attnlab {

void save_checkpoint(const std::string& path, const Arena<float>& arena, const std::string& resolved_config) {
  TensorFile f;
  f.metadata["format"] = "attnlab";
  f.metadata["config"] = resolved_config;
  for (const auto& p : arena.params()) f.add_f32(p.name, p.shape, arena.data().data() + p.offset);
  write_safetensors(path, f);
}

void load_checkpoint(const std::string& path, Arena<float>& arena) {
  TensorFile f = read_safetensors(path);
  for (const auto& p : arena.params()) {
    auto it = f.tensors.find(p.name);
    if (it == f.tensors.end()) throw UserError(path + ": tensor '" + p.name + "' is missing (does the checkpoint match the config?)");
    if (it->second.shape != p.shape) throw UserError(path + ": tensor '" + p.name + "' has the wrong shape for this config");
    auto v = it->second.as_f32(path + ": tensor '" + p.name + "'");
    std::memcpy(arena.data().data() + p.offset, v.data(), v.size() * sizeof(float));
  }
  if (f.tensors.size() != arena.params().size())
    throw UserError(path + ": holds " + std::to_string(f.tensors.size()) + " tensors, the model has " +
                    std::to_string(arena.params().size()));
}

}  // namespace attnlab
