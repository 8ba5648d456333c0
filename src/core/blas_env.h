#pragma once
// Process set-up shared by the attnlab command and the micro-benchmarks (attnlab_bench), so
// that both time the same BLAS kernels with the same allocator.
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/blas_check.h"

namespace attnlab {

// Debian's OpenBLAS 0.3.21 does not recognise Zen 5 and falls back to AVX2 "Haswell" kernels
// (this machine's image even sets OPENBLAS_CORETYPE=Haswell). Measured here: SGEMM n=2048
// 94 GFLOP/s (Haswell) vs 188 GFLOP/s (SkylakeX). On a CPU with AVX-512 we use SkylakeX;
// ATTNLAB_BLAS_CORETYPE=NAME forces a kernel, ATTNLAB_BLAS_CORETYPE=keep keeps the inherited
// one. The variable is read when the library loads, before main, so we re-execute once.
// The inherited variable may be set on purpose (older OpenBLAS builds compute wrong results
// or crash on some processors, and DYNAMIC_ARCH builds have had SkylakeX-kernel bugs), so
// the re-executed process checks the forced kernels (core/blas_check.h) and, on a mismatch,
// re-executes once more with the inherited setting and one warning line. Child processes
// (a sweep's runs) inherit the checked choice through ATTNLAB_NO_REEXEC.
inline void ensure_blas_coretype(char** argv) {
  if (const char* phase = std::getenv("ATTNLAB_NO_REEXEC")) {
    if (std::string(phase) != "check") return;
    std::string why;
    if (blas_kernels_ok_isolated(&why)) {
      setenv("ATTNLAB_NO_REEXEC", "1", 1);
      return;
    }
    const char* inherited = std::getenv("ATTNLAB_INHERITED_CORETYPE");
    const std::string forced = std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE") : "";
    if (inherited && *inherited) setenv("OPENBLAS_CORETYPE", inherited, 1);
    else unsetenv("OPENBLAS_CORETYPE");
    setenv("ATTNLAB_NO_REEXEC", "fallback", 1);
    std::fprintf(stderr, "attnlab: warning: OpenBLAS's %s kernels failed the start-up check (%s); using the inherited ones (OPENBLAS_CORETYPE=%s)\n",
                 forced.c_str(), why.c_str(), inherited && *inherited ? inherited : "(unset)");
    execv("/proc/self/exe", argv);
    return;  // exec failed: go on (the check's warning has been printed)
  }
  const char* forced = std::getenv("ATTNLAB_BLAS_CORETYPE");
  if (forced && std::string(forced) == "keep") return;
  __builtin_cpu_init();
  const char* want = forced ? forced : (__builtin_cpu_supports("avx512f") ? "SkylakeX" : nullptr);
  const char* have = std::getenv("OPENBLAS_CORETYPE");
  if (!want || (have && std::string(have) == want)) return;
  setenv("ATTNLAB_INHERITED_CORETYPE", have ? have : "", 1);
  setenv("OPENBLAS_CORETYPE", want, 1);
  setenv("ATTNLAB_NO_REEXEC", "check", 1);
  execv("/proc/self/exe", argv);  // only returns on failure: then go on with the inherited kernels
}

// Keep freed memory in the process: without this, glibc returns every large temporary to
// the kernel (mmap/munmap and trims), and the page faults of refilling it were ~10% of a
// medium training step (perf). The same settings are given to PyTorch in comparisons.
inline void keep_freed_memory() {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace attnlab
