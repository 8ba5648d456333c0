#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"

namespace attnlab {

namespace {
size_t dtype_size(const std::string& d) {
  if (d == "F32" || d == "I32") return 4;
  if (d == "F64" || d == "I64") return 8;
  return 0;
}
}  // namespace

size_t Tensor::numel() const {
  size_t n = 1;
  for (auto d : shape) n *= size_t(d);
  return n;
}

std::vector<float> Tensor::as_f32(const std::string& what) const {
  if (dtype != "F32") throw UserError(what + ": expected dtype F32, found " + dtype);
  std::vector<float> v(numel());
  if (!v.empty()) std::memcpy(v.data(), bytes.data(), v.size() * 4);  // (memcpy from a null pointer is UB, even of 0 bytes)
  return v;
}

void TensorFile::add(const std::string& name, std::string dtype, std::vector<int64_t> shape, const void* data,
                     size_t nbytes) {
  Tensor t;
  t.dtype = std::move(dtype);
  t.shape = std::move(shape);
  t.bytes.resize(nbytes);
  if (nbytes) std::memcpy(t.bytes.data(), data, nbytes);
  if (!tensors.count(name)) order.push_back(name);
  tensors[name] = std::move(t);
}

void TensorFile::add_f32(const std::string& name, std::vector<int64_t> shape, const float* data) {
  size_t n = 1;
  for (auto d : shape) n *= size_t(d);
  add(name, "F32", std::move(shape), data, n * 4);
}

void write_safetensors(const std::string& path, const TensorFile& f) {
  // nlohmann::ordered_json keeps the tensors in arena order in the header.
  nlohmann::ordered_json h;
  if (!f.metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : f.metadata) m[k] = v;
    h["__metadata__"] = m;
  }
  size_t off = 0;
  for (const auto& name : f.order) {
    const Tensor& t = f.tensors.at(name);
    h[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
  }
  std::string header = h.dump();
  while (header.size() % 8) header.push_back(' ');
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);  // little-endian host
  out += header;
  out.reserve(out.size() + off);
  for (const auto& name : f.order) {
    const auto& b = f.tensors.at(name).bytes;
    out.append(reinterpret_cast<const char*>(b.data()), b.size());
  }
  write_file_atomic(path, out);
}

TensorFile read_safetensors(const std::string& path) { return parse_safetensors(read_file(path, "safetensors file"), path); }

TensorFile parse_safetensors(std::string_view raw, const std::string& path) {
  auto bad = [&](const std::string& why) { return UserError(path + ": not a valid safetensors file: " + why); };
  if (raw.size() < 8) throw bad("shorter than 8 bytes");
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  if (n > raw.size() - 8) throw bad("header size " + std::to_string(n) + " exceeds the file");
  nlohmann::ordered_json h;
  try {
    h = nlohmann::ordered_json::parse(raw.substr(8, n));
  } catch (const std::exception& e) {
    throw bad(std::string("header is not JSON (") + e.what() + ")");
  }
  if (!h.is_object()) throw bad("header is not a JSON object");
  TensorFile f;
  const size_t base = 8 + n, data_size = raw.size() - base;
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) throw bad("__metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m)
        if (m->is_string()) f.metadata[m.key()] = m->get<std::string>();
      continue;
    }
    try {
      Tensor t;
      t.dtype = it->at("dtype").get<std::string>();
      // Integers only: nlohmann's get<> converts a float such as 1e300 to an integer type
      // unchecked (undefined behaviour; found by fuzz/fuzz_safetensors).
      const auto& shape = it->at("shape");
      if (!shape.is_array() || !std::all_of(shape.begin(), shape.end(), [](const auto& d) { return d.is_number_integer(); }))
        throw bad("tensor '" + it.key() + "' has a shape that is not a list of integers");
      for (const auto& d : shape) {
        if (d.is_number_unsigned() && d.template get<uint64_t>() > uint64_t(INT64_MAX))
          throw bad("tensor '" + it.key() + "' has a shape whose size overflows");
        t.shape.push_back(d.template get<int64_t>());
      }
      const auto& offsets = it->at("data_offsets");
      if (!offsets.is_array() || !std::all_of(offsets.begin(), offsets.end(), [](const auto& o) { return o.is_number_unsigned(); }))
        throw bad("tensor '" + it.key() + "' has data_offsets that are not non-negative integers");
      const auto offs = offsets.get<std::vector<size_t>>();
      if (dtype_size(t.dtype) == 0) throw bad("tensor '" + it.key() + "' has unsupported dtype " + t.dtype);
      if (std::any_of(t.shape.begin(), t.shape.end(), [](int64_t d) { return d < 0; }))
        throw bad("tensor '" + it.key() + "' has a negative dimension");
      size_t nbytes = dtype_size(t.dtype);
      for (int64_t d : t.shape)
        if (__builtin_mul_overflow(nbytes, size_t(d), &nbytes))
          throw bad("tensor '" + it.key() + "' has a shape whose size overflows");
      if (offs.size() != 2 || offs[0] > offs[1] || offs[1] > data_size)
        throw bad("tensor '" + it.key() + "' has data_offsets outside the file");
      if (offs[1] - offs[0] != nbytes)
        throw bad("tensor '" + it.key() + "' size does not match its shape");
      t.bytes.assign(raw.begin() + std::ptrdiff_t(base + offs[0]), raw.begin() + std::ptrdiff_t(base + offs[1]));
      f.order.push_back(it.key());
      f.tensors[it.key()] = std::move(t);
    } catch (const nlohmann::json::exception& e) {
      throw bad("tensor '" + it.key() + "': " + e.what());
    }
  }
  return f;
}

}  // namespace attnlab
