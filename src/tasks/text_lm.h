#pragma once
// Task `text_lm`: byte-level next-token prediction on a text file (vocabulary 256). The
// first 90% of the file's bytes are the training text, the next 5% the validation text and
// the last 5% the test text (disjoint). Sample i of a split is the window of
// seq_len + 1 bytes at a start drawn from (seed, split, i): the tokens are its first seq_len
// bytes and the target at each position is the next byte. The loss is cross-entropy in
// nats; the summary also gives bits per byte.
#include <memory>
#include <string>

#include "io/config_keys.h"
#include "tasks/task.h"

namespace attnlab {

class TextLmTask : public Task {
 public:
  TextLmTask(const TaskConfig& cfg, uint64_t seed);
  int d_in() const override { return 0; }
  int d_out() const override { return 1; }
  int vocab() const override { return 256; }
  void fill(Split split, const int64_t* indices, int B, Batch& batch) const override;

 private:
  TaskConfig cfg_;
  uint64_t seed_;
  std::shared_ptr<const std::string> text_;
  size_t bounds_[4] = {};  // split s is the bytes [bounds_[s], bounds_[s + 1]) (train, val, test)
};

// task.path as a file: a relative path names a file in the current directory if there is
// one, else in the project root (where ../shared/data/... is found from a checkout).
std::string text_lm_path(const std::string& path);
// Its own config key (task.path); checks that the file is there, readable and long enough.
void text_lm_keys(Keys& k, TaskConfig& c);

}  // namespace attnlab
