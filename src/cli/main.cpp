// attnlab: the command line. Errors in input exit with status 2 and one line on stderr.
#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <iostream>

#include "cli/cli.h"
#include "core/error.h"

namespace {

// Debian's OpenBLAS 0.3.21 does not recognise Zen 5 and falls back to AVX2 "Haswell" kernels
// (this machine's image even sets OPENBLAS_CORETYPE=Haswell). Measured here: SGEMM n=2048
// 94 GFLOP/s (Haswell) vs 188 GFLOP/s (SkylakeX). On a CPU with AVX-512 we use SkylakeX;
// ATTNLAB_BLAS_CORETYPE=NAME forces a kernel, ATTNLAB_BLAS_CORETYPE=keep keeps the inherited
// one. The variable is read when the library loads, before main, so we re-execute once.
void ensure_blas_coretype(char** argv) {
  if (std::getenv("ATTNLAB_NO_REEXEC")) return;
  const char* forced = std::getenv("ATTNLAB_BLAS_CORETYPE");
  if (forced && std::string(forced) == "keep") return;
  __builtin_cpu_init();
  const char* want = forced ? forced : (__builtin_cpu_supports("avx512f") ? "SkylakeX" : nullptr);
  const char* have = std::getenv("OPENBLAS_CORETYPE");
  if (!want || (have && std::string(have) == want)) return;
  setenv("OPENBLAS_CORETYPE", want, 1);
  setenv("ATTNLAB_NO_REEXEC", "1", 1);
  execv("/proc/self/exe", argv);  // only returns on failure: then go on with the inherited kernels
}

}  // namespace

int main(int argc, char** argv) {
  ensure_blas_coretype(argv);
  // Keep freed memory in the process: without this, glibc returns every large temporary to
  // the kernel (mmap/munmap and trims), and the page faults of refilling it were ~10% of a
  // medium training step (perf). The same settings are given to PyTorch in comparisons.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  CLI::App app{"attnlab: a laboratory for the theory of Transformers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(ATTNLAB_VERSION) + " (" + ATTNLAB_COMMIT + ")");
  auto train = attnlab::cli::add_train(app);
  auto errors = attnlab::cli::add_errors(app);
  auto sweep = attnlab::cli::add_sweep(app);
  auto merge = attnlab::cli::add_merge(app);
  auto report = attnlab::cli::add_report(app);
  auto reproduce = attnlab::cli::add_reproduce(app);
  auto bench = attnlab::cli::add_bench(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "attnlab: error: " << e.what() << " (see attnlab --help)\n";
    return attnlab::kExitBadInput;
  }
  try {
    if (app.got_subcommand("train")) return train();
    if (app.got_subcommand("errors")) return errors();
    if (app.got_subcommand("sweep")) return sweep();
    if (app.got_subcommand("merge")) return merge();
    if (app.got_subcommand("report")) return report();
    if (app.got_subcommand("reproduce")) return reproduce();
    if (app.got_subcommand("bench")) return bench();
  } catch (const attnlab::UserError& e) {
    std::cerr << "\nattnlab: error: " << e.what() << "\n";
    return attnlab::kExitBadInput;
  }
  return 0;
}
