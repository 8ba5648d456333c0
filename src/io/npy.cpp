#include "io/npy.h"

#include <bit>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <utility>

#include "core/error.h"
#include "io/atomic_file.h"

namespace attnlab {

static_assert(std::endian::native == std::endian::little, "the .npy reader and writer assume a little-endian host");

namespace {

constexpr char kMagic[] = "\x93NUMPY";  // 6 bytes
constexpr size_t kMagicLen = 6;

std::string shape_text(const std::vector<int64_t>& shape) {  // Python's spelling: (), (3,), (2, 3)
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::string index_text(const std::vector<int64_t>& shape, size_t flat) {  // [i, j, k] of a C-order flat index
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = int64_t(flat % size_t(shape[d]));
    flat /= size_t(shape[d]);
  }
  std::string s = "[";
  for (size_t i = 0; i < idx.size(); ++i) s += (i ? ", " : "") + std::to_string(idx[i]);
  return s + "]";
}

// A printable excerpt of untrusted text for an error message: at most 40 characters, control
// and non-ASCII bytes as \xNN.
std::string excerpt(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 40; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += char(c);
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (s.size() > 40) out += "...";
  return out;
}

// The subset of Python literals a .npy header uses: strings, integers, True/False/None,
// tuples, lists and dicts (keys: strings).
struct PyValue {
  enum Kind { Str, Int, Bool, None, Tuple, List, Dict } kind = None;
  std::string str;     // Str: the text; Int: the literal as written
  int64_t num = 0;     // Int (when it fits); Bool
  bool big = false;    // Int: does not fit in int64
  std::vector<PyValue> items;     // Tuple, List; Dict: the values
  std::vector<std::string> keys;  // Dict
};

class HeaderParser {
 public:
  explicit HeaderParser(std::string_view s) : s_(s) {}

  // The whole header: one dict, then only whitespace. Returns "" or why it is not.
  std::string parse(PyValue& out) {
    try {
      skip();
      out = value(0);
      if (out.kind != PyValue::Dict) return "expected a dict {...} at header offset 0";
      skip();
      if (p_ != s_.size()) return fail_text("unexpected '" + excerpt(s_.substr(p_, 1)) + "' after the dict");
      return "";
    } catch (const std::string& why) {
      return why;
    }
  }

 private:
  static constexpr int kMaxDepth = 16;

  std::string fail_text(const std::string& what) const { return what + " at header offset " + std::to_string(p_); }
  [[noreturn]] void fail(const std::string& what) const { throw fail_text(what); }
  void skip() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\t' || s_[p_] == '\n' || s_[p_] == '\r')) ++p_;
  }
  bool eat(char c) {
    skip();
    if (p_ < s_.size() && s_[p_] == c) {
      ++p_;
      return true;
    }
    return false;
  }
  bool word(std::string_view w) {
    if (s_.substr(p_, w.size()) != w) return false;
    const size_t e = p_ + w.size();
    if (e < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[e])) || s_[e] == '_')) return false;
    p_ = e;
    return true;
  }

  PyValue value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
    skip();
    if (p_ >= s_.size()) fail("unexpected end of header");
    const char c = s_[p_];
    PyValue v;
    if (c == '\'' || c == '"') {
      v.kind = PyValue::Str;
      v.str = string_literal();
    } else if (c == '-' || c == '+' || std::isdigit(static_cast<unsigned char>(c))) {
      integer(v);
    } else if (word("True")) {
      v.kind = PyValue::Bool;
      v.num = 1;
    } else if (word("False")) {
      v.kind = PyValue::Bool;
    } else if (word("None")) {
      v.kind = PyValue::None;
    } else if (c == '(' || c == '[') {
      ++p_;
      v.kind = c == '(' ? PyValue::Tuple : PyValue::List;
      const char close = c == '(' ? ')' : ']';
      bool comma = false;
      while (!eat(close)) {
        if (p_ >= s_.size()) fail("unexpected end of header");
        if (!v.items.empty() && !comma) fail(std::string("expected ',' or '") + close + "'");
        v.items.push_back(value(depth + 1));
        comma = eat(',');
      }
      // (3) is the integer 3 in Python, not a tuple
      if (v.kind == PyValue::Tuple && v.items.size() == 1 && !comma) {
        PyValue inner = std::move(v.items[0]);
        return inner;
      }
    } else if (c == '{') {
      ++p_;
      v.kind = PyValue::Dict;
      bool comma = false;
      while (!eat('}')) {
        if (p_ >= s_.size()) fail("unexpected end of header");
        if (!v.keys.empty() && !comma) fail("expected ',' or '}'");
        skip();
        if (p_ >= s_.size() || (s_[p_] != '\'' && s_[p_] != '"')) fail("expected a quoted key");
        std::string key = string_literal();
        if (!eat(':')) fail("expected ':'");
        v.keys.push_back(std::move(key));
        v.items.push_back(value(depth + 1));
        comma = eat(',');
      }
    } else {
      fail("unexpected '" + excerpt(s_.substr(p_, 1)) + "'");
    }
    return v;
  }

  std::string string_literal() {
    const char q = s_[p_++];
    std::string out;
    while (true) {
      if (p_ >= s_.size()) fail("unterminated string");
      const char c = s_[p_++];
      if (c == q) return out;
      if (c == '\n') fail("newline inside a string");
      if (c == '\\') {
        if (p_ >= s_.size()) fail("unterminated string");
        out += s_[p_++];  // \' \" \\: the character itself (a dtype never needs more)
      } else {
        out += c;
      }
    }
  }

  void integer(PyValue& v) {
    v.kind = PyValue::Int;
    const size_t start = p_;
    bool neg = false;
    if (s_[p_] == '-' || s_[p_] == '+') neg = s_[p_++] == '-';
    if (p_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[p_]))) fail("expected digits");
    uint64_t mag = 0;
    for (; p_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p_])); ++p_) {
      const uint64_t d = uint64_t(s_[p_] - '0');
      if (mag > (UINT64_MAX - d) / 10) v.big = true;
      else mag = mag * 10 + d;
    }
    if (p_ < s_.size() && (s_[p_] == 'L' || s_[p_] == 'l')) ++p_;  // Python 2's long suffix (old numpy)
    if (p_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[p_])) || s_[p_] == '.' || s_[p_] == '_'))
      fail("expected an integer");
    v.str = std::string(s_.substr(start, p_ - start));
    if (v.big || mag > uint64_t(INT64_MAX) + (neg ? 1 : 0)) v.big = true;
    else v.num = neg ? int64_t(0 - mag) : int64_t(mag);
  }

  std::string_view s_;
  size_t p_ = 0;
};

struct Dtype {
  std::string name;  // normalised, e.g. "f4"
  char kind = 0;     // f, i, u, b
  size_t size = 0;
};

// descr -> dtype, or throws `bad(why)`.
template <class Bad>
Dtype parse_descr(const std::string& descr, const Bad& bad) {
  std::string body = descr;
  char order = '=';
  if (!body.empty() && (body[0] == '<' || body[0] == '>' || body[0] == '|' || body[0] == '=')) {
    order = body[0];
    body = body.substr(1);
  }
  Dtype t;
  if (body == "?") body = "b1";
  if (body.size() == 2 && std::string("fiub").find(body[0]) != std::string::npos && body[1] >= '1' && body[1] <= '8') {
    t.kind = body[0];
    t.size = size_t(body[1] - '0');
    const bool ok = t.kind == 'f' ? (t.size == 4 || t.size == 8)
                    : t.kind == 'b' ? t.size == 1
                                    : (t.size == 1 || t.size == 2 || t.size == 4 || t.size == 8);
    if (ok) {
      if (order == '>' && t.size > 1)
        throw bad("big-endian dtype '" + descr + "' is not supported (save a.astype('<" + body + "'))");
      t.name = body;
      return t;
    }
  }
  std::string kind;
  const char k = body.empty() ? 0 : body[0];
  if (body == "f2" || body == "e") kind = "half-precision float, ";
  else if (k == 'c' || k == 'F' || k == 'D' || k == 'G') kind = "complex, ";
  else if (k == 'O') kind = "Python objects, ";
  else if (k == 'U' || k == 'S' || k == 'a') kind = "strings, ";
  else if (k == 'V') kind = "raw bytes, ";
  else if (k == 'M' || k == 'm') kind = "datetime, ";
  else if (k == 'f' && body != "f4" && body != "f8") kind = "float of this size, ";
  throw bad("unsupported dtype '" + excerpt(descr) + "' (" + kind + "supported: f4, f8, i1, i2, i4, i8, u1, u2, u4, u8, b1, little-endian)");
}

template <class T>
T load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

bool NpyArray::is_integer() const { return !dtype.empty() && dtype[0] != 'f'; }

size_t NpyArray::numel() const {
  size_t n = 1;
  for (int64_t d : shape) n *= size_t(d);
  return n;
}

NpyArray parse_npy(std::string_view raw, const std::string& where) {
  auto bad = [&](const std::string& why) { return UserError(where + ": not a valid .npy file: " + why); };
  if (raw.empty()) throw bad("empty file (0 bytes)");
  if (raw.substr(0, kMagicLen) != std::string_view(kMagic, kMagicLen).substr(0, std::min(raw.size(), kMagicLen)))
    throw bad("bad magic: starts with '" + excerpt(raw.substr(0, kMagicLen)) + "', not '\\x93NUMPY'");
  if (raw.size() < kMagicLen + 2) throw bad("truncated: " + std::to_string(raw.size()) + " bytes, no format version");
  const int major = static_cast<unsigned char>(raw[6]), minor = static_cast<unsigned char>(raw[7]);
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    throw bad("unsupported format version " + std::to_string(major) + "." + std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)");
  const size_t len_bytes = major == 1 ? 2 : 4, preamble = kMagicLen + 2 + len_bytes;
  if (raw.size() < preamble)
    throw bad("truncated header: " + std::to_string(raw.size()) + " bytes, shorter than the " + std::to_string(preamble) +
              "-byte preamble of format " + std::to_string(major) + ".0");
  size_t header_len = 0;
  for (size_t i = 0; i < len_bytes; ++i) header_len |= size_t(static_cast<unsigned char>(raw[8 + i])) << (8 * i);
  if (header_len > raw.size() - preamble)
    throw bad("truncated header: the header is " + std::to_string(header_len) + " bytes, the file has " +
              std::to_string(raw.size() - preamble) + " after the preamble");
  const std::string_view header = raw.substr(preamble, header_len);

  PyValue dict;
  if (const std::string why = HeaderParser(header).parse(dict); !why.empty())
    throw bad("unparseable header (" + why + "): '" + excerpt(header) + "'");
  const PyValue *descr = nullptr, *fortran = nullptr, *shape = nullptr;
  for (size_t i = 0; i < dict.keys.size(); ++i) {
    const std::string& key = dict.keys[i];
    const PyValue& v = dict.items[i];
    const PyValue** slot = key == "descr" ? &descr : key == "fortran_order" ? &fortran : key == "shape" ? &shape : nullptr;
    if (!slot) throw bad("header has an unknown key '" + excerpt(key) + "' (expected descr, fortran_order, shape)");
    if (*slot) throw bad("header gives '" + key + "' twice");
    *slot = &v;
  }
  for (auto [v, key] : {std::pair{descr, "descr"}, {fortran, "fortran_order"}, {shape, "shape"}})
    if (!v) throw bad(std::string("header has no '") + key + "'");

  if (descr->kind == PyValue::List) throw bad("structured dtype (a list of fields) is not supported");
  if (descr->kind != PyValue::Str) throw bad("'descr' is not a string");
  const Dtype dt = parse_descr(descr->str, bad);

  if (fortran->kind != PyValue::Bool) throw bad("'fortran_order' is not True or False");
  if (fortran->num) throw bad("fortran_order True is not supported (save numpy.ascontiguousarray(a))");

  if (shape->kind != PyValue::Tuple) throw bad("'shape' is not a tuple of integers");
  NpyArray a;
  a.dtype = dt.name;
  uint64_t numel = 1;
  bool overflow = false, zero = false;
  for (const PyValue& d : shape->items) {
    if (d.kind != PyValue::Int) throw bad("'shape' is not a tuple of integers");
    if (d.big ? d.str[0] == '-' : d.num < 0) throw bad("negative dimension " + excerpt(d.str) + " in 'shape'");
    if (d.big || d.num > kNpyMaxElements) throw bad("dimension " + excerpt(d.str) + " in 'shape' is larger than 2^31 (the limit)");
    a.shape.push_back(d.num);
    zero = zero || d.num == 0;
    overflow = overflow || __builtin_mul_overflow(numel, uint64_t(d.num), &numel);
  }
  if (zero) numel = 0;
  else if (overflow || numel > uint64_t(kNpyMaxElements))
    throw bad("shape " + shape_text(a.shape) + " has " + (overflow ? "more than 2^64" : std::to_string(numel)) +
              " elements, more than 2^31 (the limit)");

  const size_t need = size_t(numel) * dt.size, have = raw.size() - preamble - header_len;
  const std::string sizes = "shape " + shape_text(a.shape) + " of " + dt.name + " needs " + std::to_string(need) +
                            " data bytes, the file has " + std::to_string(have);
  if (have < need) throw bad("truncated data: " + sizes);
  if (have > need) throw bad("extra bytes after the data: " + sizes);

  const char* p = raw.data() + preamble + header_len;
  a.values.resize(size_t(numel));
  for (size_t i = 0; i < a.values.size(); ++i, p += dt.size) {
    double v = 0;
    switch (dt.kind) {
      case 'f': v = dt.size == 4 ? double(load<float>(p)) : load<double>(p); break;
      case 'b': v = *p != 0 ? 1.0 : 0.0; break;
      case 'i':
        v = dt.size == 1 ? double(load<int8_t>(p)) : dt.size == 2 ? double(load<int16_t>(p))
          : dt.size == 4 ? double(load<int32_t>(p)) : double(load<int64_t>(p));
        break;
      default:
        v = dt.size == 1 ? double(load<uint8_t>(p)) : dt.size == 2 ? double(load<uint16_t>(p))
          : dt.size == 4 ? double(load<uint32_t>(p)) : double(load<uint64_t>(p));
    }
    if (!std::isfinite(v))
      throw UserError(where + ": " + (std::isnan(v) ? "NaN" : v > 0 ? "Inf" : "-Inf") + " at index " +
                      index_text(a.shape, i) + " (flat index " + std::to_string(i) + ")");
    a.values[i] = v;
  }
  return a;
}

NpyArray read_npy(const std::string& path, const std::string& what) {
  const std::string where = what.empty() ? path : path + " (" + what + ")";
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw UserError(where + ": is a directory, not a .npy file");
  const std::string raw = read_file(path, what.empty() ? ".npy file" : ".npy file for " + what);
  return parse_npy(raw, where);
}

void write_npy_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
  size_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw std::invalid_argument("write_npy_f32: negative dimension");
    n *= size_t(d);
  }
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_text(shape) + ", }";
  // Pad with spaces and end with a newline so that the data starts at a multiple of 64 (what
  // numpy writes); format 2.0 only when the header is too long for 1.0's 2-byte length.
  const bool v2 = header.size() + 1 + 10 + 63 > 65535;
  const size_t preamble = v2 ? 12 : 10;
  while ((preamble + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::string out(kMagic, kMagicLen);
  out += char(v2 ? 2 : 1);
  out += char(0);
  for (size_t i = 0; i < (v2 ? 4u : 2u); ++i) out += char((header.size() >> (8 * i)) & 0xff);
  out += header;
  out.append(reinterpret_cast<const char*>(data), n * sizeof(float));
  write_file_atomic(path, out);
}

}  // namespace attnlab
