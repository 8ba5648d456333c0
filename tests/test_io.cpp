// safetensors round trip and the checkpoint's names, shapes and metadata; bad files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "models/transformer.h"

using namespace attnlab;
namespace fs = std::filesystem;

TEST(Safetensors, CheckpointRoundTripKeepsNamesShapesAndOrder) {
  ModelConfig c;
  c.d_model = 8; c.layers = 2; c.heads = {2, 1}; c.head_dim = {{4, 4}, {3}}; c.value_dim = {{4, 4}, {3}}; c.ffn = {16, 0};
  c.rpe = Rpe::t5; c.rpe_buckets = 6; c.rpe_max_distance = 10; c.d_in = 3; c.max_len = 12;
  Transformer<float> a(c, 1), b(c, 1);
  a.init(5);
  const std::string path = (fs::temp_directory_path() / "attnlab_ckpt.safetensors").string();
  save_checkpoint(path, a.arena, "seed = 5\n");
  load_checkpoint(path, b.arena);
  EXPECT_TRUE(std::equal(a.arena.data().begin(), a.arena.data().end(), b.arena.data().begin()));
  TensorFile f = read_safetensors(path);
  EXPECT_EQ(f.metadata["config"], "seed = 5\n");
  EXPECT_EQ(f.metadata["format"], "attnlab");
  ASSERT_EQ(f.order.size(), a.arena.params().size());
  for (size_t i = 0; i < f.order.size(); ++i) {
    EXPECT_EQ(f.order[i], a.arena.params()[i].name);
    EXPECT_EQ(f.tensors[f.order[i]].shape, a.arena.params()[i].shape);
  }
  EXPECT_EQ(f.tensors["layers.0.attn.rpe"].shape, (std::vector<int64_t>{2, 6}));
  EXPECT_EQ(f.tensors["layers.1.attn.q.weight"].shape, (std::vector<int64_t>{3, 8}));
  EXPECT_EQ(f.tensors.count("layers.1.ffn.fc1.weight"), 0u);
}

TEST(Safetensors, BadFilesAreUserErrors) {
  const fs::path p = fs::temp_directory_path() / "attnlab_bad.safetensors";
  {
    std::ofstream f(p, std::ios::binary);
    const uint64_t n = 1000;
    f.write(reinterpret_cast<const char*>(&n), 8);
    f << "{}";
  }
  try {
    read_safetensors(p.string());
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), p.string() + ": not a valid safetensors file: header size 1000 exceeds the file");
  }
  EXPECT_THROW(read_safetensors("/nonexistent.safetensors"), UserError);
}

// A shape with a negative dimension, or whose byte size overflows size_t (and may wrap around
// to match data_offsets), is rejected with one line naming the tensor.
TEST(Safetensors, NegativeOrOverflowingShapesAreUserErrors) {
  auto path = [](const std::string& name) { return (fs::temp_directory_path() / name).string(); };
  auto error_of = [&](const std::string& name, const std::string& header, size_t data_bytes) -> std::string {
    const std::string p = path(name);
    {
      std::ofstream f(p, std::ios::binary);
      const uint64_t n = header.size();
      for (int i = 0; i < 8; ++i) f.put(char((n >> (8 * i)) & 0xff));  // little-endian header length
      f << header << std::string(data_bytes, '\0');
    }
    try {
      read_safetensors(p);
    } catch (const UserError& e) {
      return e.what();
    }
    return "(no error)";
  };
  // [-1, -4]: the product 4 (16 bytes) matches the offsets
  EXPECT_EQ(error_of("attnlab_neg.safetensors", R"({"w":{"dtype":"F32","shape":[-1,-4],"data_offsets":[0,16]}})", 16),
            path("attnlab_neg.safetensors") + ": not a valid safetensors file: tensor 'w' has a negative dimension");
  EXPECT_EQ(error_of("attnlab_neg2.safetensors", R"({"w":{"dtype":"F32","shape":[3,-1],"data_offsets":[0,0]}})", 0),
            path("attnlab_neg2.safetensors") + ": not a valid safetensors file: tensor 'w' has a negative dimension");
  // [2^62, 2^62]: the product wraps around to 0, matching empty offsets
  EXPECT_EQ(error_of("attnlab_big.safetensors",
                     R"({"w":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,0]}})", 0),
            path("attnlab_big.safetensors") + ": not a valid safetensors file: tensor 'w' has a shape whose size overflows");
  // 2^62 elements alone fit, times 4 bytes each they do not
  EXPECT_EQ(error_of("attnlab_big2.safetensors", R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", 0),
            path("attnlab_big2.safetensors") + ": not a valid safetensors file: tensor 'w' has a shape whose size overflows");
  // a valid file of the same form still reads
  EXPECT_EQ(error_of("attnlab_ok.safetensors", R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})", 16), "(no error)");
}
