// Head compression: full rank reproduces the model, the parameter count is the predicted one,
// a rank-r head's bilinear form has rank r and is the truncated SVD of the original, heads
// not selected are untouched, and bad options are one-line errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "analysis/compress.h"
#include "analysis/compress_summary.h"
#include "cli_run.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "kernels/svd.h"
#include "models/model.h"
#include "train/evaluate.h"

using namespace attnlab;
namespace fs = std::filesystem;

namespace {

const char* kConfig =
    "seed = 2\n[task]\nkind = \"retrieval\"\nseq_len = 12\nd_in = 6\nn_val = 64\n"
    "[model]\nd_model = 16\nlayers = 2\nheads = [3, 2]\nhead_dim = [5, 4]\nvalue_dim = [4, 6]\nffn = 8\nrpe = \"t5\"\n";

fs::path scratch() {
  const fs::path d = fs::temp_directory_path() / ("attnlab_compress_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

// A checkpoint of the config with generic (perturbed) weights; returns its path.
std::string make_checkpoint(const std::string& toml, const std::string& name) {
  const RunConfig c = parse_run_config(toml, "compress.toml", {});
  auto m = make_model<float>(c.model, 4);
  m->init(3);
  std::mt19937 g(5);
  std::normal_distribution<float> nd;
  for (float& v : m->arena.data()) v += 0.2f * nd(g);
  const std::string path = (scratch() / name).string();
  save_checkpoint(path, m->arena, resolved_toml(c));
  return path;
}

// The model of a checkpoint, loaded, and its outputs on a fixed random batch.
std::vector<float> outputs(const std::string& ckpt) {
  const RunConfig c = checkpoint_config(ckpt, {});
  auto m = make_model<float>(c.model, 4);
  load_checkpoint(ckpt, m->arena);
  std::mt19937 g(8);
  std::normal_distribution<float> nd;
  std::vector<float> x(size_t(4) * 12 * c.model.d_in);
  for (float& v : x) v = nd(g);
  const float* y = m->forward(x.data(), nullptr, 4, 12);
  return std::vector<float>(y, y + size_t(4) * 12 * m->out_dim());
}

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) { diff = std::max(diff, double(std::fabs(a[i] - b[i]))); scale = std::max(scale, double(std::fabs(a[i]))); }
  return diff / scale;
}

}  // namespace

TEST(Compress, FullRankReproducesTheModel) {
  const std::string ck = make_checkpoint(kConfig, "orig.safetensors");
  const std::string out = (scratch() / "full.safetensors").string();
  CompressOptions o;
  o.qk_rank = 5;  // >= every head dimension: nothing is dropped
  o.ov_rank = 6;
  const CompressResult r = compress_checkpoint(ck, o, out);
  EXPECT_EQ(r.params_after, r.params_before);
  EXPECT_EQ(r.heads.size(), 5u);
  for (const auto& h : r.heads) { EXPECT_LT(h.qk_rel_error, 1e-12); EXPECT_LT(h.ov_rel_error, 1e-12); }
  EXPECT_LT(max_rel_diff(outputs(ck), outputs(out)), 1e-5);
}

TEST(Compress, RankRHeadsShrinkTheLayersByThePredictedCount) {
  const std::string ck = make_checkpoint(kConfig, "orig2.safetensors");
  const std::string out = (scratch() / "r2.safetensors").string();
  CompressOptions o;
  o.qk_rank = 2;
  o.ov_rank = 3;
  o.layers = {0};
  const CompressResult r = compress_checkpoint(ck, o, out);
  // Layer 0: H = 3, C = 16; q and k lose 3 (dk 5 -> 2) rows of C weights + 1 bias each; v loses
  // 1 (dv 4 -> 3) row of C + 1 per head, o loses 1 column of C per head.
  const int64_t predicted = r.params_before - 2 * 3 * 3 * (16 + 1) - 3 * 1 * (16 + 1) - 3 * 1 * 16;
  EXPECT_EQ(r.params_after, predicted);
  EXPECT_EQ(r.config.model.head_dim, (std::vector<std::vector<int>>{{2, 2, 2}, {4, 4}}));
  EXPECT_EQ(r.config.model.value_dim, (std::vector<std::vector<int>>{{3, 3, 3}, {6, 6}}));
  const RunConfig c = checkpoint_config(out, {});
  auto m = make_model<float>(c.model, 1);
  load_checkpoint(out, m->arena);
  EXPECT_EQ(int64_t(m->arena.size()), predicted);
  // Head 1 of layer 0: the new M' = s' A_q'^T A_k' is the rank-2 truncation of the old M.
  auto orig = make_model<float>(checkpoint_config(ck, {}).model, 1);
  load_checkpoint(ck, orig->arena);
  auto form = [](const Arena<float>& a, int h, int dk, double s) {
    const int C = 16;
    auto P = [&](const std::string& n) { return a.data().data() + a.info(a.find(n)).offset; };
    std::vector<double> m((C + 1) * (C + 1), 0.0);
    for (int c = 0; c < dk; ++c)
      for (int i = 0; i <= C; ++i)
        for (int j = 0; j <= C; ++j) {
          const int row = h * dk + c;
          const double q = i < C ? P("layers.0.attn.q.weight")[row * C + i] : P("layers.0.attn.q.bias")[row];
          const double k = j < C ? P("layers.0.attn.k.weight")[row * C + j] : P("layers.0.attn.k.bias")[row];
          m[size_t(i) * (C + 1) + j] += s * q * k;
        }
    return m;
  };
  const auto before = form(orig->arena, 1, 5, 1 / std::sqrt(5.0)), after = form(m->arena, 1, 2, 1 / std::sqrt(2.0));
  const Svd d = svd(before, 17, 17);
  const auto sa = svd(after, 17, 17).s;
  EXPECT_LT(sa[2], 1e-5 * sa[0]) << "rank 2";
  double err = 0, norm = 0;
  for (int i = 0; i < 17; ++i)
    for (int j = 0; j < 17; ++j) {
      double t = 0;
      for (int c = 0; c < 2; ++c) t += d.u[size_t(i) * d.k + c] * d.s[size_t(c)] * d.vt[size_t(c) * 17 + j];
      err = std::max(err, std::fabs(t - after[size_t(i) * 17 + j]));
      norm = std::max(norm, std::fabs(t));
    }
  EXPECT_LT(err, 1e-5 * norm) << "the truncated SVD";
  EXPECT_NEAR(r.heads[1].qk_rel_error, std::sqrt((d.s[2] * d.s[2] + d.s[3] * d.s[3] + d.s[4] * d.s[4]) /
                                                 (d.s[0] * d.s[0] + d.s[1] * d.s[1] + d.s[2] * d.s[2] + d.s[3] * d.s[3] + d.s[4] * d.s[4])),
              1e-9);
}

// One head compressed alone shrinks to the rank (heads of one layer may differ in size): the
// parameters it says it saves are gone, the other heads are copied exactly, the head's form
// has the rank, and at full rank the model is unchanged.
TEST(Compress, HeadsAloneShrinkAndTheOthersAreUntouched) {
  const std::string ck = make_checkpoint(kConfig, "orig3.safetensors");
  const std::string out = (scratch() / "h1.safetensors").string();
  CompressOptions o;
  o.qk_rank = 1;
  o.ov_rank = 2;
  o.heads = {1};
  o.layers = {0};
  const CompressResult r = compress_checkpoint(ck, o, out);
  // Layer 0 head 1 (C = 16): q and k lose 5 - 1 rows of C + 1; v loses 4 - 2 rows of C + 1, o 2 columns of C.
  EXPECT_EQ(r.params_before - r.params_after, 2 * 4 * 17 + 2 * 17 + 2 * 16);
  EXPECT_EQ(r.config.model.head_dim, (std::vector<std::vector<int>>{{5, 1, 5}, {4, 4}}));
  EXPECT_EQ(r.config.model.value_dim, (std::vector<std::vector<int>>{{4, 2, 4}, {6, 6}}));
  ASSERT_EQ(r.heads.size(), 1u);
  const RunConfig c0 = checkpoint_config(ck, {}), c = checkpoint_config(out, {});
  auto a = make_model<float>(c0.model, 1), b = make_model<float>(c.model, 1);
  load_checkpoint(ck, a->arena);
  load_checkpoint(out, b->arena);
  EXPECT_EQ(int64_t(b->arena.size()), r.params_after);
  auto P = [](const Arena<float>& ar, const std::string& n) { return ar.data().data() + ar.info(ar.find(n)).offset; };
  // q rows: head 0 (0..4) in place, head 2 from rows 10..14 to 6..10.
  for (int i = 0; i < 5 * 16; ++i) EXPECT_EQ(P(a->arena, "layers.0.attn.q.weight")[i], P(b->arena, "layers.0.attn.q.weight")[i]);
  for (int i = 0; i < 5 * 16; ++i)
    EXPECT_EQ(P(a->arena, "layers.0.attn.k.weight")[10 * 16 + i], P(b->arena, "layers.0.attn.k.weight")[6 * 16 + i]);
  // o columns: head 2's 4 columns from 8..11 to 6..9.
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 4; ++j)
      EXPECT_EQ(P(a->arena, "layers.0.attn.o.weight")[i * 12 + 8 + j], P(b->arena, "layers.0.attn.o.weight")[i * 10 + 6 + j]);
  EXPECT_EQ(std::vector<float>(P(a->arena, "layers.1.attn.q.weight"), P(a->arena, "layers.1.attn.q.weight") + 2 * 4 * 16),
            std::vector<float>(P(b->arena, "layers.1.attn.q.weight"), P(b->arena, "layers.1.attn.q.weight") + 2 * 4 * 16));
  // The compressed head's OV form W_o,h W_v,h has rank 2.
  std::vector<double> n(16 * 16, 0.0);
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < 2; ++k)
      for (int j = 0; j < 16; ++j)
        n[size_t(i) * 16 + j] += double(P(b->arena, "layers.0.attn.o.weight")[i * 10 + 4 + k]) *
                                 P(b->arena, "layers.0.attn.v.weight")[(4 + k) * 16 + j];
  const auto sv = svd(n, 16, 16).s;
  EXPECT_LT(sv[2], 1e-5 * sv[0]);
  EXPECT_GT(sv[1], 1e-3 * sv[0]);
  // Full rank for one head: the same model, the same size.
  o.qk_rank = 5;
  o.ov_rank = 4;
  const std::string same = (scratch() / "h1_full.safetensors").string();
  const CompressResult rf = compress_checkpoint(ck, o, same);
  EXPECT_EQ(rf.params_after, rf.params_before);
  EXPECT_LT(max_rel_diff(outputs(ck), outputs(same)), 1e-5);
}

TEST(Compress, BadOptionsAreOneLineErrors) {
  const std::string ck = make_checkpoint(kConfig, "orig4.safetensors");
  const std::string out = (scratch() / "x.safetensors").string();
  cli_test::expect_bad_input("compress " + ck + " --qk-rank 2 --layers 5 -o " + out, "--layers: 5 is out of range (0..1)");
  cli_test::expect_bad_input("compress " + ck + " --qk-rank 2 --heads 3 -o " + out, "--heads: 3 is out of range (the selected layers have 3 heads)");
  cli_test::expect_bad_input("compress " + ck + " -o " + out, "compress: give --qk-rank, --ov-rank and/or --group-heads");
  std::string dpfree = kConfig;
  dpfree += "dot_product = false\n";
  const std::string ck2 = make_checkpoint(dpfree, "dpfree.safetensors");
  cli_test::expect_bad_input("compress " + ck2 + " --qk-rank 2 -o " + out, "--qk-rank: " + ck2 + " has no dot product");
  EXPECT_FALSE(fs::exists(out));
}

// The curve: one row per rank and scope (model, each layer, each head); at full rank nothing
// changes; the model's saving is the sum of its layers'; a head's is 2 (C + 1) (d - r) for QK.
TEST(Compress, CurveRowsAndFullRankIsFree) {
  const std::string ck = make_checkpoint(kConfig, "curve.safetensors");
  const CompressionCurve c = compression_curve(ck, {2, 5}, "qk", {}, true, nullptr);
  ASSERT_EQ(c.rows.size(), 2u * (1 + 2 + 2 + 5));  // model, early and late halves, 2 layers, 5 heads
  EXPECT_TRUE(std::isfinite(c.base_val_loss));
  for (const auto& r : c.rows) {
    if (r.rank == 5) {
      EXPECT_NEAR(r.delta, 0.0, 1e-5 * c.base_val_loss) << r.scope << " " << r.layer << "." << r.head;
      EXPECT_EQ(r.params_removed, 0);
    }
    if (r.scope == "head" && r.rank == 2) {
      EXPECT_EQ(r.params_removed, 2 * 17 * ((r.layer == 0 ? 5 : 4) - 2));
      // T = 12 positions: q and k projections 2 C 2 (d_k - r) each, scores 2 (T + 1) / 2 (d_k - r)
      const double dd = (r.layer == 0 ? 5 : 4) - 2;
      EXPECT_DOUBLE_EQ(r.flops_removed, 12 * (2.0 * 16 * 2 * dd + 2 * 6.5 * dd));
    }
  }
  EXPECT_EQ(c.rows[0].scope, "model");
  EXPECT_EQ(c.rows[1].scope, "early");
  EXPECT_EQ(c.rows[2].scope, "late");
  EXPECT_EQ(c.rows[3].scope, "layer");
  EXPECT_EQ(c.rows[0].params_removed, c.rows[3].params_removed + c.rows[4].params_removed);
  EXPECT_EQ(c.rows[1].params_removed, c.rows[3].params_removed);  // early = layer 0 of 2
  EXPECT_NEAR(c.rows[1].delta, c.rows[3].delta, 1e-12);
  EXPECT_EQ(c.rows[3].params_removed, 2 * 3 * 3 * 17);  // layer 0: H 3, dk 5 -> 2
  cli_test::expect_bad_input("compress " + ck + " --curve 0", "--curve: ranks must be >= 1 (got 0)");
  cli_test::expect_bad_input("compress " + ck + " --curve 2 --forms kq", "--forms: 'kq' is not allowed (qk, ov, both)");
}

// Grouping: with G = H it is the identity; heads that are copies of each other merge into one
// without changing the model (mean QK form = each copy's, summed OV = their added outputs),
// with the predicted parameter count, and "similar" finds the copies wherever they are while
// "contiguous" merges neighbours; G > H and --heads are one-line errors.
TEST(Compress, GroupHeadsMergesCopiesExactlyWithThePredictedCount) {
  const std::string ck = make_checkpoint(kConfig, "group.safetensors");
  CompressOptions id;
  id.group_heads = 2;
  id.layers = {1};  // layer 1 has 2 heads: 2 groups of one
  const std::string same = (scratch() / "g_same.safetensors").string();
  const CompressResult r0 = compress_checkpoint(ck, id, same);
  EXPECT_EQ(r0.params_after, r0.params_before);
  EXPECT_LT(max_rel_diff(outputs(ck), outputs(same)), 1e-5);

  // Layer 0 (H 3, dk 5, dv 4): head 2 made a copy of head 0.
  const RunConfig c = checkpoint_config(ck, {});
  auto m = make_model<float>(c.model, 1);
  load_checkpoint(ck, m->arena);
  auto P = [&](const std::string& n) { return m->arena.data().data() + m->arena.info(m->arena.find(n)).offset; };
  const int C = 16, dk = 5, dv = 4, H = 3, buckets = c.model.rpe_buckets;
  const std::string a = "layers.0.attn.";
  for (const std::string w : {"q", "k"}) {
    std::copy_n(P(a + w + ".weight"), dk * C, P(a + w + ".weight") + 2 * dk * C);
    std::copy_n(P(a + w + ".bias"), dk, P(a + w + ".bias") + 2 * dk);
  }
  std::copy_n(P(a + "v.weight"), dv * C, P(a + "v.weight") + 2 * dv * C);
  std::copy_n(P(a + "v.bias"), dv, P(a + "v.bias") + 2 * dv);
  for (int i = 0; i < C; ++i) std::copy_n(P(a + "o.weight") + i * H * dv, dv, P(a + "o.weight") + i * H * dv + 2 * dv);
  std::copy_n(P(a + "rpe"), buckets, P(a + "rpe") + 2 * buckets);
  const std::string twins = (scratch() / "twins.safetensors").string(), merged = (scratch() / "merged.safetensors").string();
  save_checkpoint(twins, m->arena, resolved_toml(c));
  CompressOptions o;
  o.group_heads = 2;
  o.layers = {0};
  const CompressResult r = compress_checkpoint(twins, o, merged);
  EXPECT_EQ(r.config.model.heads, (std::vector<int>{2, 2}));
  ASSERT_EQ(r.heads.size(), 2u);
  EXPECT_EQ(r.heads[0].members, (std::vector<int>{0, 2}));
  EXPECT_EQ(r.heads[1].members, (std::vector<int>{1}));
  // One head fewer in layer 0: q and k rows dk (C + 1) each, v rows dv (C + 1), o columns C dv, and its rpe row.
  EXPECT_EQ(r.params_after, r.params_before - (2 * dk * (C + 1) + dv * (C + 1) + C * dv + buckets));
  EXPECT_LT(max_rel_diff(outputs(twins), outputs(merged)), 1e-5);
  // Contiguous groups {0}, {1, 2} merge heads that differ: the model changes.
  o.group_by = "contiguous";
  const std::string lossy = (scratch() / "lossy.safetensors").string();
  const CompressResult rc = compress_checkpoint(twins, o, lossy);
  EXPECT_EQ(rc.heads[1].members, (std::vector<int>{1, 2}));
  EXPECT_GT(max_rel_diff(outputs(twins), outputs(lossy)), 1e-3);

  const std::string out = (scratch() / "y.safetensors").string();
  cli_test::expect_bad_input("compress " + ck + " --group-heads 3 -o " + out, "--group-heads: 3 groups, but layer 1 has 2 heads");
  cli_test::expect_bad_input("compress " + ck + " --group-heads 1 --heads 0 -o " + out,
                             "--group-heads: not with --heads (groups are formed from every head of a layer)");
  cli_test::expect_bad_input("compress " + ck + " --group-heads 1 --group-by random -o " + out,
                             "--group-by: 'random' is not allowed (similar, contiguous)");
  EXPECT_FALSE(fs::exists(out));
}

// Defect (issue 23): a head wider than its form's rank (head_dim > d_model + 1 for QK,
// value_dim > d_model for OV) read the SVD's factors past their ends. Zero-padded beyond the
// rank, full rank and grouping into as many heads reproduce the model (the sanitizer stage
// runs this too).
TEST(Compress, HeadsWiderThanTheFormsRankArePaddedWithZeros) {
  const std::string toml =
      "seed = 2\n[task]\nkind = \"retrieval\"\nseq_len = 12\nd_in = 6\nn_val = 64\n"
      "[model]\nd_model = 8\nlayers = 1\nheads = 2\nhead_dim = 16\nvalue_dim = 12\nffn = 8\n";
  const std::string ck = make_checkpoint(toml, "wide.safetensors");
  CompressOptions full;
  full.qk_rank = 16;
  full.ov_rank = 12;
  const std::string out = (scratch() / "wide_full.safetensors").string();
  const CompressResult r = compress_checkpoint(ck, full, out);
  EXPECT_EQ(r.params_after, r.params_before);
  for (const auto& h : r.heads) { EXPECT_LT(h.qk_rel_error, 1e-12); EXPECT_LT(h.ov_rel_error, 1e-12); }
  EXPECT_LT(max_rel_diff(outputs(ck), outputs(out)), 1e-5);
  // The padded rows are zero: head 0's q rows 9..15 (the form has rank <= d_model + 1 = 9).
  const RunConfig c = checkpoint_config(out, {});
  auto m = make_model<float>(c.model, 1);
  load_checkpoint(out, m->arena);
  const float* wq = m->arena.data().data() + m->arena.info(m->arena.find("layers.0.attn.q.weight")).offset;
  for (int i = 9 * 8; i < 16 * 8; ++i) EXPECT_EQ(wq[i], 0.f) << i;
  CompressOptions same;
  same.group_heads = 2;
  const std::string grouped = (scratch() / "wide_grouped.safetensors").string();
  compress_checkpoint(ck, same, grouped);
  EXPECT_LT(max_rel_diff(outputs(ck), outputs(grouped)), 1e-5);
}

// Defect (issue 23): merged heads under fixed ALiBi (rpe = "lin", rpe_learnable = false) got
// the fresh slopes of G heads instead of the mean of their members' slopes, and "similar"
// ignored the slopes. Four heads with one QK and OV form differ only in their slopes
// 2^-2, 2^-4, 2^-6, 2^-8: Ward's clustering on the slopes groups {0}, {1, 2, 3}, and the
// merged heads keep 2^-2 and the mean of the other three (as a tensor: the compressed config
// says rpe_learnable = true). Grouping into 4 (the identity) keeps the model's function.
TEST(Compress, GroupHeadsAveragesFixedAlibiSlopes) {
  const std::string toml =
      "seed = 2\n[task]\nkind = \"retrieval\"\nseq_len = 12\nd_in = 6\nn_val = 64\n"
      "[model]\nd_model = 16\nlayers = 1\nheads = 4\nhead_dim = 4\nffn = 8\nrpe = \"lin\"\nrpe_learnable = false\n";
  const std::string ck = make_checkpoint(toml, "alibi.safetensors");
  const RunConfig c = checkpoint_config(ck, {});
  ASSERT_FALSE(c.model.rpe_learnable);
  auto m = make_model<float>(c.model, 1);
  load_checkpoint(ck, m->arena);
  ASSERT_LT(m->arena.find("layers.0.attn.rpe"), 0);  // fixed slopes are in no tensor
  auto P = [&](const std::string& n) { return m->arena.data().data() + m->arena.info(m->arena.find(n)).offset; };
  const int C = 16, dk = 4, H = 4;
  const std::string a = "layers.0.attn.";
  for (int h = 1; h < H; ++h) {
    for (const std::string w : {"q", "k", "v"}) {
      std::copy_n(P(a + w + ".weight"), dk * C, P(a + w + ".weight") + h * dk * C);
      std::copy_n(P(a + w + ".bias"), dk, P(a + w + ".bias") + h * dk);
    }
    for (int i = 0; i < C; ++i) std::copy_n(P(a + "o.weight") + i * H * dk, dk, P(a + "o.weight") + i * H * dk + h * dk);
  }
  const std::string same_forms = (scratch() / "alibi_same.safetensors").string();
  save_checkpoint(same_forms, m->arena, resolved_toml(c));
  CompressOptions o;
  o.group_heads = 2;
  const std::string merged = (scratch() / "alibi_merged.safetensors").string();
  const CompressResult r = compress_checkpoint(same_forms, o, merged);
  ASSERT_EQ(r.heads.size(), 2u);
  EXPECT_EQ(r.heads[0].members, (std::vector<int>{0}));
  EXPECT_EQ(r.heads[1].members, (std::vector<int>{1, 2, 3}));
  const RunConfig mc = checkpoint_config(merged, {});
  EXPECT_TRUE(mc.model.rpe_learnable);
  auto mm = make_model<float>(mc.model, 1);
  load_checkpoint(merged, mm->arena);
  const int id = mm->arena.find("layers.0.attn.rpe");
  ASSERT_GE(id, 0);
  const float* slopes = mm->arena.data().data() + mm->arena.info(id).offset;
  EXPECT_FLOAT_EQ(slopes[0], 0.25f);
  EXPECT_FLOAT_EQ(slopes[1], float((std::pow(2.0, -4) + std::pow(2.0, -6) + std::pow(2.0, -8)) / 3));
  o.group_heads = 4;
  const std::string identity = (scratch() / "alibi_identity.safetensors").string();
  compress_checkpoint(same_forms, o, identity);
  EXPECT_LT(max_rel_diff(outputs(same_forms), outputs(identity)), 1e-5);
}

// The FLOPs compress reports: rank 2 of dk 5 in layer 0 (H 3, C 16) at T 12 removes, per
// token, the q and k rows (2 C 2 H (dk - r) multiply-adds x 2) and the score terms (2 Te H
// (dk - r), Te = (T + 1) / 2 keys on average).
TEST(Compress, ReportsTheForwardFlopsSaved) {
  const std::string ck = make_checkpoint(kConfig, "flops.safetensors");
  const std::string out = (scratch() / "f.safetensors").string(), js = (scratch() / "f.json").string();
  const auto r = cli_test::run("compress " + ck + " --qk-rank 2 --layers 0 -o " + out + " --json " + js);
  ASSERT_EQ(r.status, 0) << r.err;
  std::ifstream f(js);
  const auto j = nlohmann::json::parse(f);
  EXPECT_EQ(j["seq_len"], 12);
  const double saved = j["flops_per_sequence_before"].get<double>() - j["flops_per_sequence_after"].get<double>();
  EXPECT_NEAR(saved, 12.0 * (2.0 * 16 * 2 * 3 * 3 + 2.0 * 6.5 * 3 * 3), 1e-6);
  EXPECT_NE(r.out.find("forward FLOPs per sequence of T = 12"), std::string::npos) << r.out;
}

// The correlation behind compress_entropy_corr: Pearson's r against a hand computation.
TEST(Compress, PearsonCorrelation) {
  // x = 1, 2, 3; y = 2, 4, 7: sxy = 5, sxx = 2, syy = 38/3, r = 5 / sqrt(76/3).
  EXPECT_NEAR(pearson({1, 2, 3}, {2, 4, 7}), 5.0 / std::sqrt(76.0 / 3.0), 1e-12);
  EXPECT_NEAR(pearson({1, 2, 3, 4}, {8, 6, 4, 2}), -1.0, 1e-12);
  EXPECT_TRUE(std::isnan(pearson({1, 2}, {1, 2})));        // fewer than three pairs
  EXPECT_TRUE(std::isnan(pearson({1, 2, 3}, {5, 5, 5})));  // a constant side
}
