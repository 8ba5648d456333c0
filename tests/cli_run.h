#pragma once
// Running the attnlab binary from a test: its exit status, stdout and stderr; and the check
// that bad input exits 2 with one line on stderr naming what and where.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace cli_test {

struct Result {
  int status = -1;
  std::string out, err;
};

// `attnlab ARGS` (a shell word list written by the test itself), stdin from /dev/null.
inline Result run(const std::string& args) {
  const std::filesystem::path tmp = std::filesystem::temp_directory_path() / ("attnlab_cli_" + std::to_string(::getpid()));
  std::filesystem::create_directories(tmp);
  const std::string out = (tmp / "out.txt").string(), err = (tmp / "err.txt").string();
  const std::string cmd = std::string(ATTNLAB_BINARY) + " " + args + " >" + out + " 2>" + err + " </dev/null";
  const int st = std::system(cmd.c_str());
  Result r;
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  auto slurp = [](const std::string& p) { std::ifstream f(p); std::stringstream s; s << f.rdbuf(); return s.str(); };
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

// A fresh scratch directory of this test process, /tmp/attnlab_NAME_PID (made once per name).
inline const std::filesystem::path& scratch_dir(const std::string& name) {
  static std::map<std::string, std::filesystem::path> made;
  auto it = made.find(name);
  if (it != made.end()) return it->second;
  std::filesystem::path p = std::filesystem::temp_directory_path() / ("attnlab_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return made[name] = p;
}

// A .npy file's bytes in format 1.0, the header dict padded as numpy pads it, then `data`.
inline std::string npy_v1(const std::string& dict, const std::string& data) {
  std::string h = dict;
  while ((10 + h.size() + 1) % 64) h += ' ';
  h += '\n';
  std::string out = "\x93NUMPY\x01";
  out += char(0);
  out += char(h.size() & 0xff);
  out += char(h.size() >> 8);
  return out + h + data;
}

inline void expect_bad_input(const std::string& args, const std::string& needle) {
  const Result r = run(args);
  EXPECT_EQ(r.status, 2) << args << "\n" << r.err;
  // exactly one non-empty line on stderr (a leading blank line clears a progress line)
  std::string e = r.err;
  while (!e.empty() && e.front() == '\n') e.erase(e.begin());
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << r.err;
  EXPECT_NE(e.find(needle), std::string::npos) << "stderr: " << r.err << "\nexpected to contain: " << needle;
}

// attnlab processes (workers, runs) whose command line mentions `needle` (orphans of a
// killed sweep).
inline int processes_with(const std::string& needle) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream f(e.path() / "cmdline");
    std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    for (char& c : cmd) if (c == 0) c = ' ';
    if (cmd.find(needle) != std::string::npos && cmd.find("attnlab") != std::string::npos) ++n;
  }
  return n;
}

}  // namespace cli_test
