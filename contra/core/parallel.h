#pragma once
/// at::parallel_for for contra's kernels, with a guard: in an OpenMP build of LibTorch (Debian's,
/// pip's) at::parallel_for is an inline template whose `#pragma omp parallel` exists only where
/// _OPENMP is defined, so a file compiled without -fopenmp runs every "parallel" loop on one
/// thread, silently. CMakeLists.txt gives every contra target the OpenMP flags; this keeps it that
/// way. Include this instead of <ATen/Parallel.h>.
#include <ATen/Config.h>
#include <ATen/Parallel.h>

#if AT_PARALLEL_OPENMP && !defined(_OPENMP)
#error \
    "at::parallel_for needs the OpenMP compile flags here (link the target to OpenMP::OpenMP_CXX)"
#endif
