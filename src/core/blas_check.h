#pragma once
// A start-up check of the BLAS kernels attnlab forces (core/blas_env.h): SGEMM and DGEMM
// against a plain loop, on shapes that reach OpenBLAS's small-matrix, multi-threaded split
// and large (blocked) paths, with every transposition and alpha, beta != 1. About 20 ms.
#include <string>

namespace attnlab {

// True if every product matches its reference within rounding; otherwise false and `why`
// names the first failing case. ATTNLAB_BLAS_CHECK_FAULT=1 (tests only) perturbs the
// reference so that the check fails; =crash makes it crash.
bool blas_kernels_ok(std::string* why);

// The same check in a forked child process: a kernel that crashes fails the check instead of
// the program, and the caller keeps no OpenMP threads from it (libgomp's pool does not
// survive a later fork(), which attnlab bench uses).
bool blas_kernels_ok_isolated(std::string* why);

// "SkylakeX" etc.: the kernel OpenBLAS chose or was told to use.
std::string blas_core_name();

}  // namespace attnlab
