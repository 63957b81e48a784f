#pragma once
/// The c10d implementation of `Group` (internal; use dist::connect / init_from_env).
#include <memory>

#include "contra/dist/group.h"

namespace contra::dist {

/// A TCPStore at env.master_addr:env.master_port (rank 0 serves it) and a ProcessGroupGloo — or
/// ProcessGroupNCCL for a CUDA device when this LibTorch has it — over it.
std::shared_ptr<Group> connect_c10d(const DistEnv& env, const InitOptions& options);

/// True when this build can make NCCL groups.
bool nccl_available();

}  // namespace contra::dist
