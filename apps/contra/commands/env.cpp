// contra env: what this build and machine offer (LibTorch, threads, BLAS, oneDNN, CUDA).
#include <cstdio>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands/commands.h"
#include "contra/core/runtime.h"

namespace contra::cli {

namespace {
struct EnvOptions {
  int threads = 0;
  bool json = false;
  bool no_measure = false;
};

int run_env(const EnvOptions& options) {
  set_threads(options.threads);
  RuntimeInfo info = runtime_info(!options.no_measure);
  if (options.json) {
    nlohmann::json j = {{"contra", info.contra_version},
                        {"libtorch", info.torch_version},
                        {"threads", info.threads},
                        {"cores", info.cores},
                        {"blas", info.blas_kind},
                        {"blas_library", info.blas_library},
                        {"matmul_gflops", info.matmul_gflops},
                        {"onednn", info.onednn},
                        {"openmp", info.openmp},
                        {"cuda", info.cuda},
                        {"cuda_devices", info.cuda_devices},
                        {"allocator_tuned", info.allocator_tuned},
                        {"fast_bf16", info.fast_bf16},
                        {"amx_bf16", info.amx_bf16}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("contra      %s\n", info.contra_version.c_str());
  std::printf("libtorch    %s\n", info.torch_version.c_str());
  std::printf("threads     %d (of %d cores)\n", info.threads, info.cores);
  std::printf("blas        %s (%s)\n", info.blas_kind.c_str(),
              info.blas_library.empty() ? "-" : info.blas_library.c_str());
  if (info.matmul_gflops > 0) {
    std::printf("matmul      %.1f GFLOP/s (512x512 float, %d threads)\n", info.matmul_gflops,
                info.threads);
  }
  std::printf("onednn      %s\n", info.onednn ? "yes" : "no");
  std::printf("openmp      %s\n", info.openmp ? "yes" : "no");
  std::printf("cuda        %s\n",
              info.cuda ? fmt::format("yes ({} devices)", info.cuda_devices).c_str() : "no");
  std::printf("allocator   %s\n",
              info.allocator_tuned ? "tuned (freed memory kept in process)" : "glibc default");
  std::printf("bf16        %s\n", info.amx_bf16    ? "AMX: precision auto = bf16"
                                  : info.fast_bf16 ? "AVX512-BF16: precision auto = float32"
                                                   : "emulated: precision auto = float32");
  return 0;
}
}  // namespace

void register_env(CLI::App& app) {
  auto options = std::make_shared<EnvOptions>();
  auto* sub = app.add_subcommand("env", "report LibTorch version, threads, BLAS, oneDNN, CUDA");
  sub->add_option("--threads", options->threads, "intra-op threads (0 = all cores)");
  sub->add_flag("--json", options->json, "print JSON");
  sub->add_flag("--no-measure", options->no_measure, "skip the matmul timing");
  sub->callback([options] { set_runner([options] { return run_env(*options); }); });
}

}  // namespace contra::cli
