#include "contra/core/runtime.h"

#include <dlfcn.h>
#include <link.h>
#include <malloc.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <thread>

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "contra/core/error.h"
#include "contra/core/version.h"

namespace contra {

namespace {
std::atomic<bool> g_allocator_tuned{false};

int find_blas(struct dl_phdr_info* info, size_t, void* data) {
  if (info->dlpi_name && std::strstr(info->dlpi_name, "libblas.so")) {
    *static_cast<std::string*>(data) = info->dlpi_name;
    return 1;
  }
  return 0;
}
}  // namespace

void configure_allocator() {
  bool expected = false;
  if (!g_allocator_tuned.compare_exchange_strong(expected, true)) return;
  // Serve large blocks from the heap (never mmap per allocation) and never give memory back by
  // trim: a training step frees and reallocates the same sizes every iteration.
  mallopt(M_MMAP_THRESHOLD, INT_MAX);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
  mallopt(M_TOP_PAD, 256 << 20);
}

void set_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
}

c10::Device parse_device(const std::string& name) {
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(name);
  } catch (const std::exception&) {
    throw ConfigError("device: unknown '" + name + "' (expected cpu, cuda or cuda:N)");
  }
  if (device.is_cuda()) {
    if (!torch::cuda::is_available()) {
      throw UnavailableError(
          "device: '" + name +
          "' requested but CUDA is not available (this LibTorch or machine has no GPU)");
    }
    if (device.has_index() && device.index() >= static_cast<int>(torch::cuda::device_count())) {
      throw ConfigError("device: '" + name + "' out of range (" +
                        std::to_string(torch::cuda::device_count()) + " CUDA devices)");
    }
  } else if (!device.is_cpu()) {
    throw ConfigError("device: unsupported '" + name + "' (expected cpu, cuda or cuda:N)");
  }
  return device;
}

void seed_everything(std::uint64_t seed) {
  torch::manual_seed(seed);
  if (torch::cuda::is_available()) torch::cuda::manual_seed_all(seed);
}

RuntimeInfo runtime_info(bool measure) {
  RuntimeInfo info;
  info.contra_version = CONTRA_VERSION;
  info.torch_version = TORCH_VERSION;
  info.threads = at::get_num_threads();
  info.cores = static_cast<int>(std::thread::hardware_concurrency());
  info.onednn = at::hasMKLDNN();
  info.openmp = at::hasOpenMP();
  info.cuda = torch::cuda::is_available();
  info.cuda_devices = info.cuda ? static_cast<int>(torch::cuda::device_count()) : 0;
  info.allocator_tuned = g_allocator_tuned.load();
  info.fast_bf16 = cpu_has_fast_bf16();
  info.amx_bf16 = cpu_has_amx_bf16();

  std::string blas;
  dl_iterate_phdr(find_blas, &blas);
  if (!blas.empty()) {
    std::error_code ec;
    auto resolved = std::filesystem::canonical(blas, ec);
    info.blas_library = ec ? blas : resolved.string();
  }
  const std::string& lib = info.blas_library;
  if (lib.find("openblas-openmp") != std::string::npos) {
    info.blas_kind = "openblas-openmp";
  } else if (lib.find("openblas-pthread") != std::string::npos) {
    info.blas_kind = "openblas-pthread";
  } else if (lib.find("openblas") != std::string::npos) {
    info.blas_kind = "openblas";
  } else if (lib.find("mkl") != std::string::npos) {
    info.blas_kind = "mkl";
  } else if (lib.find("blis") != std::string::npos) {
    info.blas_kind = "blis";
  } else if (lib.find("/blas/") != std::string::npos) {
    info.blas_kind = "reference (netlib; install libopenblas0-openmp)";
  } else if (lib.empty()) {
    info.blas_kind = "built in (no libblas.so loaded)";
  } else {
    info.blas_kind = "unknown";
  }

  if (measure) {
    torch::NoGradGuard no_grad;
    auto a = torch::randn({512, 512});
    auto b = torch::randn({512, 512});
    auto c = torch::mm(a, b);  // warm-up
    int reps = 0;
    auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    while (elapsed < 0.1 || reps < 3) {
      c = torch::mm(a, b);
      ++reps;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    info.matmul_gflops = 2.0 * 512 * 512 * 512 * reps / elapsed / 1e9;
  }
  return info;
}

namespace {
/// Whether the first CPU's flags in /proc/cpuinfo include any of `names`.
bool cpu_flag(std::initializer_list<const char*> names) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line);
    std::string w;
    while (words >> w) {
      for (const char* name : names) {
        if (w == name) return true;
      }
    }
    return false;  // the first CPU's flags speak for all
  }
  return false;
}
}  // namespace

bool cpu_has_fast_bf16() {
  static const bool fast = cpu_flag({"amx_bf16", "avx512_bf16"});
  return fast;
}

bool cpu_has_amx_bf16() {
  static const bool amx = cpu_flag({"amx_bf16"});
  return amx;
}

bool resolve_bf16(const std::string& precision, const c10::Device& device) {
  if (precision == "bfloat16") return true;
  if (precision == "auto") return device.is_cpu() && cpu_has_amx_bf16();
  return false;
}

}  // namespace contra
