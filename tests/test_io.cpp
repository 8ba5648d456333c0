// safetensors round trip and the checkpoint's names, shapes and metadata; bad files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "models/transformer.h"

using namespace attnlab;
namespace fs = std::filesystem;

TEST(Safetensors, CheckpointRoundTripKeepsNamesShapesAndOrder) {
  ModelConfig c;
  c.d_model = 8; c.layers = 2; c.heads = {2, 1}; c.head_dim = {4, 3}; c.value_dim = {4, 3}; c.ffn = {16, 0};
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
