#include "io/atomic_file.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace attnlab {

void write_file_atomic(const std::string& path, std::string_view content) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  const fs::path tmp = p.parent_path() / ("." + p.filename().string() + ".tmp");
  std::error_code ec;
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw UserError(path + ": cannot write (check that the directory exists and is writable)");
    f.write(content.data(), std::streamsize(content.size()));
    f.close();
    if (!f) {  // the old file stays as it was; no half-written file is left behind
      fs::remove(tmp, ec);
      throw UserError(path + ": write failed (disk full?)");
    }
  }
  fs::rename(tmp, p, ec);
  if (ec) {
    const std::string why = ec.message();
    fs::remove(tmp, ec);
    throw UserError(path + ": cannot rename into place: " + why);
  }
}

std::string read_file(const std::string& path, const std::string& what) {
  namespace fs = std::filesystem;
  std::ifstream f(path, std::ios::binary);
  if (!f) throw UserError(path + ": cannot open " + what + " (no such file or not readable)");
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw UserError(path + ": cannot open " + what + " (a directory, not a file)");
  if (fs::is_regular_file(path, ec)) {
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  // A pipe (e.g. <(...)) is read to its end; a device such as /dev/zero has none: stop at a cap.
  constexpr size_t kCap = size_t(1) << 28;
  std::string out;
  char buf[1 << 16];
  while (f.read(buf, sizeof buf) || f.gcount() > 0) {
    out.append(buf, size_t(f.gcount()));
    if (out.size() > kCap) throw UserError(path + ": " + what + " is not a regular file and gives more than 256 MiB (a device?)");
  }
  return out;
}

}  // namespace attnlab
