// The safetensors parser on arbitrary bytes, then every tensor read as F32 (what a checkpoint
// load does).
#include "fuzz_common.h"
#include "io/safetensors.h"

void fuzz_one(std::string_view input) {
  attnlab::TensorFile f = attnlab::parse_safetensors(input, "fuzz.safetensors");
  for (const auto& name : f.order) {
    const attnlab::Tensor& t = f.tensors.at(name);
    if (t.dtype == "F32") (void)t.as_f32(name);
  }
}
