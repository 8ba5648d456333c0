#pragma once
// NumPy .npy files (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
// the magic "\x93NUMPY", a version (1.0, 2.0 or 3.0), a little-endian header length (2 bytes
// in 1.0, 4 in 2.0/3.0), a Python dict literal {'descr': ..., 'fortran_order': ...,
// 'shape': (...)} padded with spaces and a newline, then the raw array in C order.
//
// Read: little-endian (or byte-order-free) numeric dtypes only, C order, at most 2^31
// elements, every float finite. Every rejection is a UserError of one line naming the file
// (and what it is for) and the problem: "PATH (task.inputs): not a valid .npy file: WHY" or
// "PATH: NaN at index [3, 7, 0] (flat index 87)".
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace attnlab {

struct NpyArray {
  // Normalised, without the byte-order character: "f4", "f8", "i1", "i2", "i4", "i8",
  // "u1", "u2", "u4", "u8", "b1".
  std::string dtype;
  std::vector<int64_t> shape;  // () is a scalar: one element
  std::vector<double> values;  // C order; booleans as 0/1; 64-bit integers beyond 2^53 rounded
  bool is_integer() const;     // an integer or boolean dtype
  size_t numel() const;        // the product of the shape (1 for a scalar)
};

// The largest number of elements read (2^31).
constexpr int64_t kNpyMaxElements = int64_t(1) << 31;

// Reads PATH; `what` (e.g. "task.inputs") names its role in errors, "" for none.
NpyArray read_npy(const std::string& path, const std::string& what);
// The parser: `where` prefixes every error ("PATH" or "PATH (what)").
NpyArray parse_npy(std::string_view bytes, const std::string& where);
// Writes a float32 array in C order (format 1.0, or 2.0 if the header needs it), atomically
// (io/atomic_file.h). Non-finite values are written as they are (read_npy refuses them).
void write_npy_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data);

}  // namespace attnlab
