#pragma once
// Parameter arenas to and from model.safetensors (tensor names and layouts: docs/model.md).
#include <map>
#include <string>

#include "core/arena.h"
#include "io/safetensors.h"

namespace attnlab {

// Every parameter as an F32 tensor in arena order; metadata carries "format" and "config".
void save_checkpoint(const std::string& path, const Arena<float>& arena, const std::string& resolved_config);
// Loads tensors into an arena of the same architecture; UserError naming the tensor on mismatch.
void load_checkpoint(const std::string& path, Arena<float>& arena);

// The parameters as named F32 tensors into a file (shared with training checkpoints), and
// back: every arena tensor must be there with its shape (extra tensors are the caller's).
void add_parameters(TensorFile& f, const Arena<float>& arena);
void load_parameters(const TensorFile& f, const std::string& path, Arena<float>& arena);

}  // namespace attnlab
