#pragma once
// safetensors files (https://github.com/huggingface/safetensors): 8-byte little-endian header
// size, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then
// the raw little-endian tensor bytes.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace attnlab {

struct Tensor {
  std::string dtype;  // F32 | F64 | I32 | I64
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  size_t numel() const;
  std::vector<float> as_f32(const std::string& what) const;  // F32 only (UserError otherwise)
};

struct TensorFile {
  std::vector<std::string> order;  // names in file order
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
  void add(const std::string& name, std::string dtype, std::vector<int64_t> shape, const void* data, size_t nbytes);
  void add_f32(const std::string& name, std::vector<int64_t> shape, const float* data);
};

void write_safetensors(const std::string& path, const TensorFile& f);  // atomic
TensorFile read_safetensors(const std::string& path);                  // UserError on bad input
// The parser read_safetensors uses, on a file's bytes (`path` names it in errors).
TensorFile parse_safetensors(std::string_view raw, const std::string& path);

}  // namespace attnlab
