// .npy reading and writing (io/npy.h): headers of every format version as Python writes
// them, every supported dtype, files saved by numpy itself (when /usr/bin/python3 has numpy),
// the write_npy_f32 round trip, and the exact one-line error of each bad file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/npy.h"

using namespace attnlab;
namespace fs = std::filesystem;

namespace {

fs::path scratch() {
  static const fs::path d = [] {
    fs::path p = fs::temp_directory_path() / ("attnlab_npy_" + std::to_string(getpid()));
    fs::create_directories(p);
    return p;
  }();
  return d;
}

// A .npy file's bytes: magic, version, header length (2 bytes in 1.0, 4 in 2.0/3.0), the
// header padded with spaces and a newline to a multiple of 64 as numpy writes it (pad =
// false: the header exactly as given), then the data.
std::string npy_bytes(const std::string& header, const std::string& data, int major = 1, bool pad = true) {
  std::string h = header;
  const size_t preamble = major == 1 ? 10 : 12;
  if (pad) {
    while ((preamble + h.size() + 1) % 64) h += ' ';
    h += '\n';
  }
  std::string out = "\x93NUMPY";
  out += char(major);
  out += char(0);
  for (size_t i = 0; i < (major == 1 ? 2u : 4u); ++i) out += char((h.size() >> (8 * i)) & 0xff);
  return out + h + data;
}

template <class T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

std::string write(const std::string& name, const std::string& bytes) {
  const std::string p = (scratch() / name).string();
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  return p;
}

// The error of parsing these bytes ("(no error)" if none), with "F" as the file name.
std::string error_of(const std::string& bytes) {
  try {
    parse_npy(bytes, "F");
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

const std::string kF4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
const std::vector<float> kSix = {0.5f, -1.f, 2.f, 3.25f, 4.f, -5.5f};

}  // namespace

TEST(Npy, ReadsFloat32AsNumpyWritesIt) {
  const std::string p = write("a.npy", npy_bytes(kF4, raw(kSix)));
  NpyArray a = read_npy(p, "task.inputs");
  EXPECT_EQ(a.dtype, "f4");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.numel(), 6u);
  EXPECT_FALSE(a.is_integer());
  EXPECT_EQ(a.values, (std::vector<double>{0.5, -1, 2, 3.25, 4, -5.5}));
}

TEST(Npy, HeaderVersionsKeyOrderQuotesAndSpacing) {
  const std::string data = raw(kSix);
  for (int major : {1, 2, 3})
    for (const std::string& h : {
             kF4,
             std::string("{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}"),
             std::string("{\"fortran_order\":False,\"shape\":(2,3,),\"descr\":\"<f4\",}"),
             std::string("  {  'descr' :  '<f4' ,\n 'shape' : ( 2 , 3 ) , 'fortran_order' : False }  "),
             std::string("{'descr': 'f4', 'fortran_order': False, 'shape': (2, 3)}"),  // no byte order
             std::string("{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }"),  // Python 2's numpy
         }) {
      SCOPED_TRACE(std::to_string(major) + ": " + h);
      for (bool pad : {true, false}) {
        NpyArray a = parse_npy(npy_bytes(h, data, major, pad), "F");
        EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
        EXPECT_EQ(a.values[5], -5.5);
      }
    }
}

TEST(Npy, EveryDtype) {
  auto read = [](const std::string& descr, const std::string& data, int64_t n) {
    return parse_npy(npy_bytes("{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + std::to_string(n) + ",), }", data), "F");
  };
  NpyArray f8 = read("<f8", raw(std::vector<double>{1e300, -2.5, 0.1}), 3);
  EXPECT_EQ(f8.dtype, "f8");
  EXPECT_EQ(f8.values, (std::vector<double>{1e300, -2.5, 0.1}));
  EXPECT_EQ(read("|i1", raw(std::vector<int8_t>{-128, 127}), 2).values, (std::vector<double>{-128, 127}));
  EXPECT_EQ(read("<i2", raw(std::vector<int16_t>{-32768, 7}), 2).values, (std::vector<double>{-32768, 7}));
  EXPECT_EQ(read("<i4", raw(std::vector<int32_t>{-5, 2147483647}), 2).values, (std::vector<double>{-5, 2147483647.0}));
  NpyArray i8 = read("<i8", raw(std::vector<int64_t>{-(int64_t(1) << 40), 3}), 2);
  EXPECT_EQ(i8.dtype, "i8");
  EXPECT_TRUE(i8.is_integer());
  EXPECT_EQ(i8.values, (std::vector<double>{-1099511627776.0, 3}));
  NpyArray u1 = read("|u1", raw(std::vector<uint8_t>{0, 255, 9}), 3);
  EXPECT_EQ(u1.dtype, "u1");
  EXPECT_EQ(u1.values, (std::vector<double>{0, 255, 9}));
  EXPECT_EQ(read("<u2", raw(std::vector<uint16_t>{65535}), 1).values, (std::vector<double>{65535}));
  EXPECT_EQ(read("<u4", raw(std::vector<uint32_t>{4294967295u}), 1).values, (std::vector<double>{4294967295.0}));
  EXPECT_EQ(read("<u8", raw(std::vector<uint64_t>{uint64_t(1) << 63}), 1).values, (std::vector<double>{9223372036854775808.0}));
  NpyArray b = read("|b1", raw(std::vector<uint8_t>{1, 0, 1}), 3);
  EXPECT_EQ(b.dtype, "b1");
  EXPECT_TRUE(b.is_integer());
  EXPECT_EQ(b.values, (std::vector<double>{1, 0, 1}));
  // one-byte types have no byte order: any order character is fine
  EXPECT_EQ(read(">u1", raw(std::vector<uint8_t>{7}), 1).values, (std::vector<double>{7}));
  EXPECT_EQ(read("<i1", raw(std::vector<int8_t>{-7}), 1).values, (std::vector<double>{-7}));
}

TEST(Npy, ScalarsAndEmptyArrays) {
  NpyArray s = parse_npy(npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", raw(std::vector<double>{4.5})), "F");
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.numel(), 1u);
  EXPECT_EQ(s.values, (std::vector<double>{4.5}));
  NpyArray e = parse_npy(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", ""), "F");
  EXPECT_EQ(e.shape, (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(e.numel(), 0u);
  EXPECT_TRUE(e.values.empty());
}

TEST(Npy, WriteF32RoundTrip) {
  std::vector<float> v(2 * 3 * 4);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i) * 0.25f - 3.f;
  for (const std::vector<int64_t>& shape : {std::vector<int64_t>{24}, {4, 6}, {2, 3, 4}, {}, {0}}) {
    const std::string p = (scratch() / "rt.npy").string();
    write_npy_f32(p, shape, v.data());
    const std::string bytes = read_file(p, "npy");
    const size_t hlen = uint8_t(bytes[8]) | size_t(uint8_t(bytes[9])) << 8;
    EXPECT_EQ((10 + hlen) % 64, 0u);  // the data is 64-byte aligned, as numpy writes it
    EXPECT_EQ(bytes[10 + hlen - 1], '\n');
    NpyArray a = read_npy(p, "");
    EXPECT_EQ(a.dtype, "f4");
    EXPECT_EQ(a.shape, shape);
    ASSERT_EQ(a.values.size(), a.numel());
    for (size_t i = 0; i < a.values.size(); ++i) EXPECT_EQ(a.values[i], double(v[i]));
  }
  EXPECT_FALSE(fs::exists(scratch() / ".rt.npy.tmp"));  // written through a temporary name
}

// Files saved by numpy itself: every dtype the readers meet, 1-D to 3-D, format 1.0, 2.0, 3.0.
TEST(Npy, ReadsFilesSavedByNumpy) {
  if (std::system("/usr/bin/python3 -c 'import numpy' > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 with numpy is not installed";
  const fs::path d = scratch() / "numpy";
  fs::create_directories(d);
  const std::string script = R"(
import sys, numpy as np
from numpy.lib import format as F
d = sys.argv[1]
shapes = {1: (24,), 2: (4, 6), 3: (2, 3, 4)}
for dt in ['float32', 'float64', 'int64', 'int32', 'uint8', 'int8', 'int16', 'uint16', 'bool']:
    for nd, shape in shapes.items():
        a = (np.arange(24) * 3 - 20)
        a = (a % 256 if dt.startswith('uint') else a % 2 if dt == 'bool' else a * 0.5 if dt.startswith('float') else a).astype(dt).reshape(shape)
        np.save(f'{d}/{dt}_{nd}.npy', a)
        for v in [(1, 0), (2, 0), (3, 0)]:
            with open(f'{d}/{dt}_{nd}_v{v[0]}.npy', 'wb') as f:
                F.write_array(f, a, version=v)
np.save(f'{d}/fortran.npy', np.asfortranarray(np.ones((2, 3), dtype='float32')))
np.save(f'{d}/big_endian.npy', np.ones(3, dtype='>f4'))
np.save(f'{d}/complex.npy', np.ones(3, dtype='complex64'))
np.save(f'{d}/half.npy', np.ones(3, dtype='float16'))
np.save(f'{d}/strings.npy', np.array(['a', 'bc']))
np.save(f'{d}/object.npy', np.array([1, 'x'], dtype=object), allow_pickle=True)
np.save(f'{d}/structured.npy', np.zeros(2, dtype=[('a', '<f4'), ('b', '<i4')]))
a = np.zeros((2, 3, 4), dtype='float32'); a[1, 2, 3] = np.nan
np.save(f'{d}/nan.npy', a)
a = np.zeros((5,), dtype='float64'); a[2] = -np.inf
np.save(f'{d}/ninf.npy', a)
)";
  write_file_atomic((d / "make.py").string(), script);
  ASSERT_EQ(std::system(("/usr/bin/python3 " + (d / "make.py").string() + " " + d.string()).c_str()), 0);

  const std::vector<std::pair<std::string, std::string>> dtypes = {
      {"float32", "f4"}, {"float64", "f8"}, {"int64", "i8"}, {"int32", "i4"}, {"uint8", "u1"},
      {"int8", "i1"},    {"int16", "i2"},   {"uint16", "u2"}, {"bool", "b1"}};
  const std::vector<std::vector<int64_t>> shapes = {{24}, {4, 6}, {2, 3, 4}};
  for (const auto& [name, dt] : dtypes)
    for (int nd = 1; nd <= 3; ++nd)
      for (const std::string suffix : {"", "_v1", "_v2", "_v3"}) {
        const std::string file = name + "_" + std::to_string(nd) + suffix + ".npy";
        SCOPED_TRACE(file);
        NpyArray a = read_npy((d / file).string(), "test");
        EXPECT_EQ(a.dtype, dt);
        EXPECT_EQ(a.shape, shapes[size_t(nd - 1)]);
        ASSERT_EQ(a.values.size(), 24u);
        for (int i = 0; i < 24; ++i) {
          const int x = i * 3 - 20;
          const double want = name.rfind("uint", 0) == 0 ? double(((x % 256) + 256) % 256)
                              : name == "bool" ? double(x % 2 != 0)
                              : name.rfind("float", 0) == 0 ? x * 0.5
                                                            : double(x);
          EXPECT_EQ(a.values[size_t(i)], want) << "at " << i;
        }
      }
  auto err = [&](const std::string& file) {
    try {
      read_npy((d / file).string(), "");
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const std::string p = (d / "").string();
  EXPECT_EQ(err("fortran.npy"), p + "fortran.npy: not a valid .npy file: fortran_order True is not supported (save numpy.ascontiguousarray(a))");
  EXPECT_EQ(err("big_endian.npy"), p + "big_endian.npy: not a valid .npy file: big-endian dtype '>f4' is not supported (save a.astype('<f4'))");
  EXPECT_NE(err("complex.npy").find("unsupported dtype '<c8' (complex, "), std::string::npos) << err("complex.npy");
  EXPECT_NE(err("half.npy").find("unsupported dtype '<f2' (half-precision float, "), std::string::npos) << err("half.npy");
  EXPECT_NE(err("strings.npy").find("unsupported dtype '<U2' (strings, "), std::string::npos) << err("strings.npy");
  EXPECT_NE(err("object.npy").find("unsupported dtype '|O' (Python objects, "), std::string::npos) << err("object.npy");
  EXPECT_NE(err("structured.npy").find("structured dtype (a list of fields) is not supported"), std::string::npos);
  EXPECT_EQ(err("nan.npy"), p + "nan.npy: NaN at index [1, 2, 3] (flat index 23)");
  EXPECT_EQ(err("ninf.npy"), p + "ninf.npy: -Inf at index [2] (flat index 2)");
}

TEST(Npy, MissingEmptyAndDirectoryAreUserErrors) {
  const std::string missing = (scratch() / "nope.npy").string();
  try {
    read_npy(missing, "task.inputs");
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), missing + ": cannot open .npy file for task.inputs (no such file or not readable)");
  }
  const std::string empty = write("empty.npy", "");
  try {
    read_npy(empty, "task.targets");
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), empty + " (task.targets): not a valid .npy file: empty file (0 bytes)");
  }
  try {
    read_npy(scratch().string(), "");
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), scratch().string() + ": is a directory, not a .npy file");
  }
}

TEST(Npy, BadPreambleAndHeaderAreUserErrors) {
  const std::string pre = "F: not a valid .npy file: ";
  EXPECT_EQ(error_of("PK\x03\x04zipfile"), pre + "bad magic: starts with 'PK\\x03\\x04zi', not '\\x93NUMPY'");
  EXPECT_EQ(error_of("\x93NUM"), pre + "truncated: 4 bytes, no format version");
  EXPECT_EQ(error_of(std::string("\x93NUMPY\x04\x00", 8) + "xx"), pre + "unsupported format version 4.0 (supported: 1.0, 2.0, 3.0)");
  EXPECT_EQ(error_of(std::string("\x93NUMPY\x01\x01", 8) + "xx"), pre + "unsupported format version 1.1 (supported: 1.0, 2.0, 3.0)");
  EXPECT_EQ(error_of(std::string("\x93NUMPY\x01\x00\x10", 9)), pre + "truncated header: 9 bytes, shorter than the 10-byte preamble of format 1.0");
  EXPECT_EQ(error_of(std::string("\x93NUMPY\x02\x00\x10\x00", 10)), pre + "truncated header: 10 bytes, shorter than the 12-byte preamble of format 2.0");
  EXPECT_EQ(error_of(npy_bytes(kF4, raw(kSix)).substr(0, 40)),
            pre + "truncated header: the header is 118 bytes, the file has 30 after the preamble");
  EXPECT_EQ(error_of(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", raw(kSix))),
            pre + "unparseable header (unexpected end of header at header offset 118): "
                  "'{'descr': '<f4', 'fortran_order': False,...'");
  EXPECT_EQ(error_of(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", raw(kSix), 1, false)),
            pre + "unparseable header (unexpected end of header at header offset 56): "
                  "'{'descr': '<f4', 'fortran_order': False,...'");
  auto starts = [&](const std::string& header, const std::string& why) {
    const std::string e = error_of(npy_bytes(header, ""));
    EXPECT_EQ(e.substr(0, pre.size() + why.size() + 24), pre + "unparseable header (" + why + "): '");
  };
  starts("{'descr': '<f4' 'fortran_order': False}", "expected ',' or '}' at header offset 16");
  starts("{'descr': '<f4', 'fortran_order': false, 'shape': ()}", "unexpected 'f' at header offset 34");
  starts("{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,)}", "expected an integer at header offset 52");
  starts("{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}", "expected ',' or ')' at header offset 53");
  starts("{descr: '<f4'}", "expected a quoted key at header offset 1");
  starts("{'descr' '<f4'}", "expected ':' at header offset 9");
  EXPECT_NE(error_of(npy_bytes("['descr', '<f4']", "")).find("unparseable header (expected a dict {...} at header offset 0)"), std::string::npos);
  EXPECT_NE(error_of(npy_bytes("{'descr': '<f4'} x", "")).find("unparseable header (unexpected 'x' after the dict at header offset 17)"), std::string::npos);
  EXPECT_NE(error_of(npy_bytes(std::string(100, '(') + std::string(100, ')'), "")).find("nesting deeper than 16"), std::string::npos);
  EXPECT_NE(error_of(npy_bytes("{'descr: '<f4'}", "")).find("unparseable header ("), std::string::npos);
  // the header's own text in the message is cut and escaped: one line
  EXPECT_EQ(error_of(npy_bytes("{'a\n", "")), pre + "unparseable header (newline inside a string at header offset 4): '{'a\\x0a                                    ...'");
  EXPECT_EQ(error_of(npy_bytes("{'descr': '<f4', 'shape': (3,)}", "")), pre + "header has no 'fortran_order'");
  EXPECT_EQ(error_of(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1}", "")),
            pre + "header has an unknown key 'x' (expected descr, fortran_order, shape)");
  EXPECT_EQ(error_of(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'shape': (3,)}", "")),
            pre + "header gives 'shape' twice");
  EXPECT_EQ(error_of(npy_bytes("{'descr': 4, 'fortran_order': False, 'shape': (3,)}", "")), pre + "'descr' is not a string");
  EXPECT_EQ(error_of(npy_bytes("{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}", "")), pre + "'fortran_order' is not True or False");
  EXPECT_EQ(error_of(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': 3}", "")), pre + "'shape' is not a tuple of integers");
  EXPECT_EQ(error_of(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': ('3',)}", "")), pre + "'shape' is not a tuple of integers");
  EXPECT_EQ(error_of(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': [3]}", "")), pre + "'shape' is not a tuple of integers");
}

TEST(Npy, BadDtypesAreUserErrors) {
  const std::string pre = "F: not a valid .npy file: ";
  auto with = [](const std::string& descr) {
    return error_of(npy_bytes("{'descr': '" + descr + "', 'fortran_order': False, 'shape': (1,)}", std::string(8, '\0')));
  };
  EXPECT_EQ(with(">f4"), pre + "big-endian dtype '>f4' is not supported (save a.astype('<f4'))");
  EXPECT_EQ(with(">i8"), pre + "big-endian dtype '>i8' is not supported (save a.astype('<i8'))");
  const std::string sup = "supported: f4, f8, i1, i2, i4, i8, u1, u2, u4, u8, b1, little-endian)";
  EXPECT_EQ(with("|O"), pre + "unsupported dtype '|O' (Python objects, " + sup);
  EXPECT_EQ(with("<U3"), pre + "unsupported dtype '<U3' (strings, " + sup);
  EXPECT_EQ(with("|S8"), pre + "unsupported dtype '|S8' (strings, " + sup);
  EXPECT_EQ(with("<c8"), pre + "unsupported dtype '<c8' (complex, " + sup);
  EXPECT_EQ(with("<c16"), pre + "unsupported dtype '<c16' (complex, " + sup);
  EXPECT_EQ(with("<f2"), pre + "unsupported dtype '<f2' (half-precision float, " + sup);
  EXPECT_EQ(with("<f16"), pre + "unsupported dtype '<f16' (float of this size, " + sup);
  EXPECT_EQ(with("<M8[ns]"), pre + "unsupported dtype '<M8[ns]' (datetime, " + sup);
  EXPECT_EQ(with("|V8"), pre + "unsupported dtype '|V8' (raw bytes, " + sup);
  EXPECT_EQ(with("<i3"), pre + "unsupported dtype '<i3' (" + sup);
  EXPECT_EQ(with(""), pre + "unsupported dtype '' (" + sup);
  EXPECT_EQ(error_of(npy_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}", "")),
            pre + "structured dtype (a list of fields) is not supported");
  EXPECT_EQ(error_of(npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3)}", raw(kSix))),
            pre + "fortran_order True is not supported (save numpy.ascontiguousarray(a))");
}

TEST(Npy, BadShapesAndSizesAreUserErrors) {
  const std::string pre = "F: not a valid .npy file: ";
  auto shaped = [](const std::string& shape, const std::string& data) {
    return error_of(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + "}", data));
  };
  EXPECT_EQ(shaped("(2, -3)", ""), pre + "negative dimension -3 in 'shape'");
  EXPECT_EQ(shaped("(-4, -1)", std::string(16, '\0')), pre + "negative dimension -4 in 'shape'");  // the product 4 matches the data
  EXPECT_EQ(shaped("(-99999999999999999999,)", ""), pre + "negative dimension -99999999999999999999 in 'shape'");
  EXPECT_EQ(shaped("(99999999999999999999,)", ""), pre + "dimension 99999999999999999999 in 'shape' is larger than 2^31 (the limit)");
  EXPECT_EQ(shaped("(2147483649,)", ""), pre + "dimension 2147483649 in 'shape' is larger than 2^31 (the limit)");
  EXPECT_EQ(shaped("(65536, 65536)", ""), pre + "shape (65536, 65536) has 4294967296 elements, more than 2^31 (the limit)");
  EXPECT_EQ(shaped("(2147483648, 2147483648, 2147483648)", ""),
            pre + "shape (2147483648, 2147483648, 2147483648) has more than 2^64 elements, more than 2^31 (the limit)");
  // 2^31 elements exactly are allowed: the data size is what is wrong here
  EXPECT_EQ(shaped("(2147483648,)", ""), pre + "truncated data: shape (2147483648,) of f4 needs 8589934592 data bytes, the file has 0");
  // a zero dimension makes an empty array whatever the others are
  EXPECT_EQ(shaped("(0, 2147483648)", ""), "(no error)");
  EXPECT_EQ(shaped("(2, 3)", raw(kSix).substr(0, 20)), pre + "truncated data: shape (2, 3) of f4 needs 24 data bytes, the file has 20");
  EXPECT_EQ(shaped("(2, 3)", raw(kSix) + "abcd"), pre + "extra bytes after the data: shape (2, 3) of f4 needs 24 data bytes, the file has 28");
  EXPECT_EQ(shaped("(2, 3)", raw(kSix)), "(no error)");
}

TEST(Npy, NanAndInfNameTheirIndex) {
  std::vector<float> v(2 * 3 * 4, 1.f);
  v[1 * 12 + 2 * 4 + 3] = std::numeric_limits<float>::quiet_NaN();
  const std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }";
  const std::string p = write("nan.npy", npy_bytes(h, raw(v)));
  try {
    read_npy(p, "task.inputs");
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), p + " (task.inputs): NaN at index [1, 2, 3] (flat index 23)");
  }
  v[23] = 1.f;
  v[7] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(error_of(npy_bytes(h, raw(v))), "F: Inf at index [0, 1, 3] (flat index 7)");
  std::vector<double> w = {0, -std::numeric_limits<double>::infinity()};
  EXPECT_EQ(error_of(npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", raw(w))),
            "F: -Inf at index [1] (flat index 1)");
  EXPECT_EQ(error_of(npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", raw(std::vector<double>{NAN}))),
            "F: NaN at index [] (flat index 0)");
}
