#pragma once
// A start-up check of the BLAS kernels attnlab forces (core/blas_env.h): SGEMM and DGEMM
// against a plain loop, on shapes that reach OpenBLAS's small-matrix, multi-threaded split
// and large (blocked) paths, with every transposition and alpha, beta != 1. About 20 ms.
#include <string>

namespace attnlab {

// True if every product matches its reference within rounding; otherwise false and `why`
// names the first failing case. ATTNLAB_BLAS_CHECK_FAULT=1 (tests only) perturbs the
// reference so that the check fails.
bool blas_kernels_ok(std::string* why);

// "SkylakeX" etc.: the kernel OpenBLAS chose or was told to use.
std::string blas_core_name();

}  // namespace attnlab
