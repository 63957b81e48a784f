#pragma once
/// Process-wide runtime set-up and facts: allocator, threads, device, seeding, BLAS in use.
#include <cstdint>
#include <string>

#include <c10/core/Device.h>

namespace contra {

/// Keeps freed memory in the process (glibc mallopt: no mmap per large block, no trimming).
/// On these VMs returning large buffers to the OS and faulting them back in costs 3–25× in training
/// (see docs/performance.md). Call once at start-up, before the first large allocation. Idempotent.
void configure_allocator();

/// Sets intra-op threads (LibTorch + OpenMP). n <= 0 means "all cores"
/// (std::thread::hardware_concurrency).
void set_threads(int n);

/// Parses "cpu", "cuda", "cuda:1". Throws ConfigError for other strings and UnavailableError when
/// CUDA is asked for but not available in this LibTorch / machine.
c10::Device parse_device(const std::string& name);

/// Seeds LibTorch's CPU (and CUDA) generators.
void seed_everything(std::uint64_t seed);

/// True when this CPU multiplies bfloat16 in hardware (AMX-BF16 or AVX512-BF16, from
/// /proc/cpuinfo's flags on Linux; false elsewhere). Without them bf16 products are emulated and
/// slower than float32. Cached after the first call.
bool cpu_has_fast_bf16();

/// True when this CPU has AMX-BF16 matrix units (/proc/cpuinfo's flags; false elsewhere): there a
/// bf16 product runs several times faster than float32. Cached after the first call.
bool cpu_has_amx_bf16();

/// Resolves a precision setting "float32" | "bfloat16" | "auto" for tensors on `device`: "auto" is
/// bfloat16 on a CPU with AMX-BF16 (cpu_has_amx_bf16()), float32 otherwise and on GPUs. (With
/// AVX512-BF16 alone, CPC's float32 fused kernels measured as fast as its bf16 products:
/// docs/cpc.md.) Returns true for bf16.
bool resolve_bf16(const std::string& precision, const c10::Device& device);

/// What `contra env` reports.
struct RuntimeInfo {
  std::string contra_version;
  std::string torch_version;
  int threads = 1;
  int cores = 1;
  std::string blas_library;  // resolved path of libblas.so.3 in this process
  std::string blas_kind;     // "openblas-openmp", "openblas-pthread", "reference", "mkl", ...
  double matmul_gflops =
      0;  // measured 512³ float matmul on the current thread count (0 if skipped)
  bool onednn = false;
  bool openmp = false;
  bool cuda = false;
  int cuda_devices = 0;
  bool allocator_tuned = false;
  bool fast_bf16 = false;  // cpu_has_fast_bf16()
  bool amx_bf16 = false;   // cpu_has_amx_bf16()
};

/// Collects the facts above; `measure` times a matmul (~0.1 s).
RuntimeInfo runtime_info(bool measure = true);

}  // namespace contra
