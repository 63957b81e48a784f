#pragma once
// Precompiled for every target (CMake target_precompile_headers): the LibTorch headers cost ~20 s
// per translation unit otherwise. Headers still include what they use; this file only speeds the
// build.
#include <torch/torch.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>
