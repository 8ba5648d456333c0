#pragma once
// Starting another program without a shell: an argument vector goes to posix_spawnp as it
// is, so no string (a title from someone's spec, a path with quotes or newlines) is ever
// parsed by a shell.
#include <string>
#include <vector>

namespace attnlab {

struct ProcessOptions {
  std::string cwd;          // working directory of the child ("" = ours)
  std::string stderr_path;  // the child's stderr goes to this file ("" = /dev/null)
  bool capture_stdout = false;  // else stdout goes to /dev/null
};

struct ProcessResult {
  int status = -1;  // exit status; 128 + signal if killed; -1 if it could not be started
  std::string out;  // stdout, if captured
};

// Runs argv[0] (looked up in PATH) with argv[1..]; stdin is /dev/null. Waits for it.
ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& opt = {});

}  // namespace attnlab
