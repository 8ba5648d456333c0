// The start-up check of the BLAS kernels attnlab forces (core/blas_check.h, blas_env.h):
// it passes on correct kernels, fails on a wrong product, and a failure falls back to the
// inherited kernels with one warning line.
#include <gtest/gtest.h>

#include <cstdlib>

#include "cli_run.h"
#include "core/blas_check.h"

using cli_test::run;

TEST(BlasCheck, PassesOnThisMachinesKernelsAndFailsOnAWrongProduct) {
  std::string why;
  EXPECT_TRUE(attnlab::blas_kernels_ok(&why)) << why;
  setenv("ATTNLAB_BLAS_CHECK_FAULT", "1", 1);
  EXPECT_FALSE(attnlab::blas_kernels_ok(&why));
  unsetenv("ATTNLAB_BLAS_CHECK_FAULT");
  EXPECT_EQ(why.rfind("SGEMM NN 3x5x7: entry (1, 2) is ", 0), 0u) << why;
}

// A forced kernel that fails the check: one warning line, and the process runs on the
// kernel it inherited (attnlab --version names the kernel in use).
TEST(BlasCheck, AFailedCheckFallsBackToTheInheritedKernel) {
  setenv("OPENBLAS_CORETYPE", "Sandybridge", 1);
  setenv("ATTNLAB_BLAS_CORETYPE", "Haswell", 1);
  const auto ok = run("--version");
  setenv("ATTNLAB_BLAS_CHECK_FAULT", "1", 1);
  const auto bad = run("--version");
  setenv("ATTNLAB_BLAS_CHECK_FAULT", "crash", 1);
  const auto crash = run("--version");
  unsetenv("ATTNLAB_BLAS_CHECK_FAULT");
  unsetenv("ATTNLAB_BLAS_CORETYPE");
  unsetenv("OPENBLAS_CORETYPE");
  EXPECT_EQ(ok.status, 0);
  EXPECT_EQ(ok.err, "");
  EXPECT_NE(ok.out.find("OpenBLAS kernels Haswell"), std::string::npos) << ok.out;
  EXPECT_EQ(bad.status, 0);
  EXPECT_EQ(bad.err.rfind("attnlab: warning: OpenBLAS's Haswell kernels failed the start-up check (SGEMM NN 3x5x7: entry (1, 2) is ", 0), 0u) << bad.err;
  EXPECT_NE(bad.err.find("); using the inherited ones (OPENBLAS_CORETYPE=Sandybridge)\n"), std::string::npos) << bad.err;
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  EXPECT_NE(bad.out.find("OpenBLAS kernels Sandybridge"), std::string::npos) << bad.out;
  // A kernel that crashes: the check runs in a child process, so attnlab goes on.
  EXPECT_EQ(crash.status, 0);
  EXPECT_EQ(crash.err, "attnlab: warning: OpenBLAS's Haswell kernels failed the start-up check (the check crashed with signal 11); "
                       "using the inherited ones (OPENBLAS_CORETYPE=Sandybridge)\n");
  EXPECT_NE(crash.out.find("OpenBLAS kernels Sandybridge"), std::string::npos) << crash.out;
}
