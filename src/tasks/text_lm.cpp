#include "tasks/text_lm.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/rng.h"
#include "io/file_cache.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {
// The text of a file, read once while it stays unchanged (io/file_cache.h).
std::shared_ptr<const std::string> load_text(const std::string& path) {
  static FileCache<std::string> cache;
  return cache.get("", {path}, [&] {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw UserError("task.path: cannot read '" + path + "'");
    std::ostringstream ss;
    ss << f.rdbuf();
    return std::make_shared<const std::string>(ss.str());
  });
}
}  // namespace

std::string text_lm_path(const std::string& path) {
  const fs::path p(path);
  if (p.is_absolute()) return p.string();
  std::error_code ec;
  if (fs::exists(p, ec)) return fs::absolute(p, ec).lexically_normal().string();
  return (fs::path(ATTNLAB_SOURCE_DIR) / p).lexically_normal().string();
}

TextLmTask::TextLmTask(const TaskConfig& cfg, uint64_t seed) : cfg_(cfg), seed_(seed), text_(load_text(text_lm_path(cfg.path))) {
  const size_t n = text_->size();
  bounds_[0] = 0;
  bounds_[1] = n * 9 / 10;
  bounds_[2] = n * 19 / 20;
  bounds_[3] = n;
}

void TextLmTask::fill(Split split, const int64_t* indices, int B, Batch& batch) const {
  const int T = cfg_.seq_len;
  batch.B = B;
  batch.T = T;
  batch.x.clear();
  batch.y.clear();
  batch.tokens.resize(size_t(B) * T);
  batch.targets.resize(size_t(B) * T);
  batch.mask.assign(size_t(B) * T, 1.f);
  static const uint64_t streams[3] = {stream_id("text_lm/train"), stream_id("text_lm/val"), stream_id("text_lm/test")};
  const size_t lo = bounds_[int(split)], hi = bounds_[int(split) + 1];
  const uint64_t starts = uint64_t(hi - lo - size_t(T));  // windows of T + 1 bytes inside [lo, hi)
  const unsigned char* s = reinterpret_cast<const unsigned char*>(text_->data());
  for (int b = 0; b < B; ++b) {
    const size_t at = lo + size_t(rng_below(seed_, streams[int(split)], uint64_t(indices[b]), starts));
    for (int t = 0; t < T; ++t) {
      batch.tokens[size_t(b) * T + t] = s[at + size_t(t)];
      batch.targets[size_t(b) * T + t] = s[at + size_t(t) + 1];
    }
  }
}

void text_lm_keys(Keys& k, TaskConfig& c) {
  k.text("path", c.path);  // the text file (default: the project's tinyshakespeare)
  if (!k.reading()) return;
  c.vocab = 256;
  c.d_in = 0;
  c.d_out = 1;
  const std::string p = text_lm_path(c.path);
  std::error_code ec;
  if (!fs::exists(p, ec)) k.fail("path", "'" + c.path + "' (" + p + "): no such file");
  if (!fs::is_regular_file(p, ec)) k.fail("path", "'" + c.path + "' (" + p + "): not a regular file");
  std::ifstream f(p, std::ios::binary);
  if (!f) k.fail("path", "'" + c.path + "' (" + p + "): cannot be read");
  const auto size = fs::file_size(p, ec);
  if (ec || size == 0) k.fail("path", "'" + c.path + "' (" + p + "): the file is empty");
  // Every split needs a window of seq_len + 1 bytes: the smallest are the last two 5%.
  if (std::min(size * 19 / 20 - size * 9 / 10, size - size * 19 / 20) < uint64_t(c.seq_len) + 2)
    k.fail("path", "'" + c.path + "' (" + p + "): " + std::to_string(size) + " bytes are too few for windows of task.seq_len + 1 = " +
                       std::to_string(c.seq_len + 1) + " bytes in each of its last two 5% (the validation and test texts)");
}

}  // namespace attnlab
