// Inputs found by the fuzz targets (fuzz/, scripts/fuzz.sh): each must be an ordinary
// rejection (a UserError) or an ordinary result, without a crash or a sanitizer report (the
// sanitizer stage of scripts/test.sh runs these under ASan and UBSan).
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "core/error.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "sweep/spec.h"

using namespace attnlab;

namespace {

std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((n >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string safetensors_error(const std::string& bytes) {
  try {
    parse_safetensors(bytes, "F");
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

// fuzz_safetensors: an F32 tensor with no element (shape [0, 4]) read as F32 did memcpy from a
// null pointer (UBSan: "null pointer passed as argument 1"), and so did adding one.
TEST(FuzzRegressions, SafetensorsEmptyTensor) {
  TensorFile f = parse_safetensors(safetensors_bytes(R"({"zero":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]}})", ""), "F");
  ASSERT_EQ(f.tensors.count("zero"), 1u);
  EXPECT_TRUE(f.tensors["zero"].as_f32("zero").empty());
  TensorFile g;
  g.add_f32("zero", {0}, nullptr);
  EXPECT_TRUE(g.tensors["zero"].bytes.empty());
}

// fuzz_safetensors: a float in data_offsets or shape (7.21e302) was converted to an integer
// by nlohmann's get<>, unchecked (UBSan: "outside the range of representable values").
TEST(FuzzRegressions, SafetensorsFloatOffsetsAndShapes) {
  const std::string pre = "F: not a valid safetensors file: ";
  EXPECT_EQ(safetensors_error(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[40,7.21e302]}})", std::string(8, '\0'))),
            pre + "tensor 'w' has data_offsets that are not non-negative integers");
  EXPECT_EQ(safetensors_error(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", std::string(8, '\0'))),
            pre + "tensor 'w' has data_offsets that are not non-negative integers");
  EXPECT_EQ(safetensors_error(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":"0"}})", std::string(8, '\0'))),
            pre + "tensor 'w' has data_offsets that are not non-negative integers");
  EXPECT_EQ(safetensors_error(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[1e300],"data_offsets":[0,8]}})", std::string(8, '\0'))),
            pre + "tensor 'w' has a shape that is not a list of integers");
  EXPECT_EQ(safetensors_error(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", std::string(8, '\0'))),
            pre + "tensor 'w' has a shape that is not a list of integers");
  EXPECT_EQ(safetensors_error(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8]}})", std::string(8, '\0'))),
            pre + "tensor 'w' has a shape whose size overflows");
  EXPECT_EQ(safetensors_error(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0'))), "(no error)");
}

// fuzz_config, fuzz_spec, fuzz_override: inputs on which toml++ 3.3.0 (Debian 12) reaches
// TOML_UNREACHABLE or a failing TOML_ASSERT when built header-only with assertions
// (upstream bugs; fuzz/ubsan_ignore.txt). Debian's release library, which attnlab links,
// rejects them with a parse error: a UserError naming the line.
TEST(FuzzRegressions, TomlInputsThatUpsetTomlPlusPlus) {
  auto config_error = [](const std::string& text, const std::vector<std::string>& ov = {}) {
    try {
      parse_run_config(text, "F.toml", ov);
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_EQ(config_error("[H1\xc5\x8foU\n").rfind("F.toml:1:", 0), 0u) << config_error("[H1\xc5\x8foU\n");
  EXPECT_EQ(config_error("s = \"\"\"\\\n\xc2\xa7\"\"\"\n").rfind("F.toml:", 0), 0u);
  EXPECT_EQ(config_error("\xcc\xaa").rfind("F.toml:1:", 0), 0u);
  const char* kBase = "[task]\nkind = \"sparse_memory\"\nseq_len = 64\nlags = [1, 8]\n[model]\nheads = 2\nhead_dim = 4\n";
  EXPECT_EQ(config_error(kBase, {"model={kind=[}"}), "command line: override 'model={kind=[}': the value is not valid TOML");
  try {
    parse_spec("[# E2 (paper 2)\n[experiment]\nname = \"x\"\n", "S.toml", "", false);
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("S.toml:1: TOML syntax error: ", 0), 0u) << e.what();
  }
}
