#include "tasks/text_lm.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "core/error.h"
#include "core/rng.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {
// The text of a file, read once per process (a sweep's runs are processes of their own).
std::shared_ptr<const std::string> load_text(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const std::string>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(path);
  if (it != cache.end()) return it->second;
  std::ifstream f(path, std::ios::binary);
  if (!f) throw UserError("task.path: cannot read '" + path + "'");
  std::ostringstream ss;
  ss << f.rdbuf();
  auto text = std::make_shared<const std::string>(ss.str());
  cache[path] = text;
  return text;
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
  split_at_ = text_->size() * 9 / 10;
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
  const size_t lo = split == Split::train ? 0 : split_at_, hi = split == Split::train ? split_at_ : text_->size();
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
  // Both splits need a window of seq_len + 1 bytes: the validation text is the last 10%.
  if (size - size * 9 / 10 < uint64_t(c.seq_len) + 2)
    k.fail("path", "'" + c.path + "' (" + p + "): " + std::to_string(size) + " bytes are too few for windows of task.seq_len + 1 = " +
                       std::to_string(c.seq_len + 1) + " bytes in its last 10% (the validation text)");
}

}  // namespace attnlab
