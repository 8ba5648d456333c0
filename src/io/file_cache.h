#pragma once
// What a task read from its files, shared within one process: config resolution reads a data
// set to derive its shapes and the task then needs the same contents. An entry is valid only
// for the files as they were read: the key holds each file's device, inode, size and
// modification time (ns), so a file rewritten since (in one Python session: attnlab.train,
// edit y.npy, attnlab.train again; or eval after the data changed) is read anew. The cache
// keeps only its most recent entry alive; older ones live as long as a task holds them.
#include <sys/stat.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace attnlab {

// "dev:ino:size:mtime_ns" of a file, or "absent" (the loader then reports the error).
inline std::string file_stamp(const std::string& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return "absent";
  return std::to_string(uint64_t(st.st_dev)) + ":" + std::to_string(uint64_t(st.st_ino)) + ":" + std::to_string(int64_t(st.st_size)) +
         ":" + std::to_string(int64_t(st.st_mtim.tv_sec)) + "." + std::to_string(int64_t(st.st_mtim.tv_nsec));
}

template <class T>
class FileCache {
 public:
  // The entry for `key` read from `paths` as they are now, or load()'s result (then cached).
  // A load that throws caches nothing.
  std::shared_ptr<const T> get(const std::string& key, const std::vector<std::string>& paths,
                               const std::function<std::shared_ptr<const T>()>& load) {
    std::string full = key;
    for (const auto& p : paths) full += "\n" + p + "@" + file_stamp(p);
    {
      std::lock_guard<std::mutex> l(mu_);
      if (auto it = entries_.find(full); it != entries_.end())
        if (auto v = it->second.lock()) return last_ = v;
    }
    std::shared_ptr<const T> v = load();
    std::lock_guard<std::mutex> l(mu_);
    for (auto it = entries_.begin(); it != entries_.end();) it = it->second.expired() ? entries_.erase(it) : std::next(it);
    entries_[full] = v;
    last_ = v;
    return v;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::weak_ptr<const T>> entries_;
  std::shared_ptr<const T> last_;
};

}  // namespace attnlab
