#include "contra/core/runtime.h"

#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace {

TEST(Runtime, Bf16ResolutionFollowsTheSettingAndTheDevice) {
  const c10::Device cpu(c10::DeviceType::CPU), gpu(c10::DeviceType::CUDA, 0);
  EXPECT_FALSE(contra::resolve_bf16("float32", cpu));
  EXPECT_FALSE(contra::resolve_bf16("float32", gpu));
  EXPECT_TRUE(contra::resolve_bf16("bfloat16", cpu));
  EXPECT_TRUE(contra::resolve_bf16("bfloat16", gpu));
  EXPECT_EQ(contra::resolve_bf16("auto", cpu), contra::cpu_has_amx_bf16());
  EXPECT_FALSE(contra::resolve_bf16("auto", gpu));  // auto stays float32 on GPUs
}

TEST(Runtime, FastBf16AgreesWithProcCpuinfo) {
  std::ifstream in("/proc/cpuinfo");
  if (!in) GTEST_SKIP() << "no /proc/cpuinfo";
  std::string line;
  bool flag = false;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0) {
      flag = line.find(" amx_bf16") != std::string::npos ||
             line.find(" avx512_bf16") != std::string::npos;
      break;
    }
  }
  EXPECT_EQ(contra::cpu_has_fast_bf16(), flag);
}

TEST(Runtime, AmxAgreesWithProcCpuinfo) {
  std::ifstream in("/proc/cpuinfo");
  if (!in) GTEST_SKIP() << "no /proc/cpuinfo";
  std::string line;
  bool flag = false;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0) {
      flag = (line + " ").find(" amx_bf16 ") != std::string::npos;
      break;
    }
  }
  EXPECT_EQ(contra::cpu_has_amx_bf16(), flag);
  if (flag) EXPECT_TRUE(contra::cpu_has_fast_bf16());
}

}  // namespace
