#include "core/process.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

extern char** environ;

namespace attnlab {

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& opt) {
  ProcessResult r;
  if (argv.empty()) return r;
  int pipefd[2] = {-1, -1};
  if (opt.capture_stdout && pipe2(pipefd, O_CLOEXEC) != 0) return r;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (opt.capture_stdout) posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  else posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  // The stderr path is opened before the chdir, so a relative path is relative to our cwd.
  posix_spawn_file_actions_addopen(&fa, 2, opt.stderr_path.empty() ? "/dev/null" : opt.stderr_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!opt.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, opt.cwd.c_str());
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (opt.capture_stdout) close(pipefd[1]);
  if (rc != 0) {
    if (opt.capture_stdout) close(pipefd[0]);
    return r;
  }
  if (opt.capture_stdout) {
    char buf[4096];
    for (;;) {
      const ssize_t n = read(pipefd[0], buf, sizeof buf);
      if (n > 0) r.out.append(buf, size_t(n));
      else if (n == 0 || errno != EINTR) break;
    }
    close(pipefd[0]);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return r;
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
  return r;
}

}  // namespace attnlab
