#pragma once
/// Process groups for data-parallel training on PyTorch's c10d (DESIGN.md: the stub pattern).
///
/// A `Group` is the set of ranks taking part in one training run. Algorithm code talks to the
/// process-wide group `world()` and never asks which implementation it has:
/// - the single-process group (the default, and what `init_from_env` gives when WORLD_SIZE is unset
///   or 1): every collective is the identity, nothing is started;
/// - a c10d group: a TCPStore (rank 0 serves it at MASTER_ADDR:MASTER_PORT) and ProcessGroupGloo
///   on CPU, ProcessGroupNCCL when the device is CUDA and this LibTorch was built with NCCL.
///
/// Configuration comes from the variables torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK,
/// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), so `torchrun --no-python contra train ...` and
/// `contra launch --nproc N -- train ...` start the same thing.
///
/// Every collective waits at most the group's timeout. When a peer dies or hangs, the collective
/// throws DistributedError naming this rank, the collective and the rank(s) at fault: each rank
/// publishes a heartbeat and the number of collectives it has entered in the store (a background
/// thread, once a second),
/// so a failed rank can tell a dead peer (no heartbeat) from a hung one (alive, fewer collectives).
///
///   auto group = contra::dist::init_from_env({.timeout = std::chrono::seconds(300)});
///   torch::Tensor t = torch::ones({4});
///   contra::dist::world().all_reduce_sum_(t);   // t == WORLD_SIZE everywhere
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <c10/core/Device.h>
#include <torch/types.h>

#include "contra/core/error.h"

namespace contra::dist {

/// A distributed collective failed: a peer rank died, hung past the timeout, or the rendezvous
/// could not be made. The message names this rank, the collective and the rank(s) at fault. Not a
/// user error: the CLI exits with 1.
class DistributedError : public Error {
 public:
  using Error::Error;
};

/// The rank layout read from the environment.
struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr;  // host of rank 0's store
  int master_port = 0;
  /// torchrun's agent already serves the store at MASTER_ADDR:MASTER_PORT
  /// (TORCHELASTIC_USE_AGENT_STORE=True): every rank connects as a client, under the key prefix
  /// /worker/attempt_<TORCHELASTIC_RESTART_COUNT>, as PyTorch's own env:// initialisation does.
  bool agent_store = false;
  int restart_count = 0;
  bool distributed() const { return world_size > 1; }
};

/// Reads RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT through
/// `getenv`. WORLD_SIZE unset (or 1) means a single process; otherwise RANK, MASTER_ADDR and
/// MASTER_PORT are required, LOCAL_WORLD_SIZE defaults to WORLD_SIZE (one machine) and LOCAL_RANK
/// to RANK mod LOCAL_WORLD_SIZE.
/// Throws ConfigError naming the variable and what was expected (a missing variable, a value that
/// is not an integer, RANK outside [0, WORLD_SIZE), a port outside 1..65535).
DistEnv read_env(const std::function<const char*(const char*)>& getenv);
/// The same with the process environment.
DistEnv read_env();

struct InitOptions {
  /// Longest wait of any collective (and of the rendezvous).
  std::chrono::milliseconds timeout{std::chrono::seconds(300)};
  /// The training device: CUDA selects NCCL (when available), anything else Gloo.
  c10::Device device{c10::kCPU};
  /// Seconds between heartbeats published in the store (0 = no heartbeat thread).
  double heartbeat_s = 1.0;
};

class Group {
 public:
  virtual ~Group() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;
  virtual int local_size() const = 0;
  /// "single", "gloo" or "nccl".
  virtual std::string backend() const = 0;
  virtual std::chrono::milliseconds timeout() const = 0;
  /// Where this group's collectives take their tensors: the CUDA device for NCCL, else the CPU.
  virtual c10::Device device() const = 0;
  bool is_main() const { return rank() == 0; }

  /// Sums `tensor` over the ranks, in place (contiguous, same shape and dtype on every rank).
  virtual void all_reduce_sum_(torch::Tensor& tensor) = 0;
  /// Copies rank `root`'s `tensor` into every rank's `tensor`, in place.
  virtual void broadcast_(torch::Tensor& tensor, int root) = 0;
  /// Every rank's `tensor`, in rank order. All ranks must pass the same shape and dtype
  /// (DistributedError otherwise, naming both shapes).
  virtual std::vector<torch::Tensor> all_gather(const torch::Tensor& tensor) = 0;
  /// Returns when every rank has called it.
  virtual void barrier() = 0;
  /// Each machine's local rank 0 runs `prepare` first (e.g. generating a data set into a folder);
  /// the other ranks of that machine wait for it — through the store, up to `wait` (preparing data
  /// may outlast the collective timeout) — and then run `prepare` themselves (finding the data
  /// ready); then every rank waits for every machine's first rank. When a leader's `prepare`
  /// throws, the others throw DistributedError naming that rank.
  virtual void main_first(const std::string& what, const std::function<void()>& prepare,
                          std::chrono::milliseconds wait) = 0;
};

/// A group of one process (every collective is the identity).
std::shared_ptr<Group> make_single_group();

/// Connects to the others of `env` (a c10d group) — or a single-process group when
/// !env.distributed(). Throws ConfigError for a bad layout, UnavailableError when NCCL is asked for
/// but missing, DistributedError when the rendezvous fails within the timeout.
std::shared_ptr<Group> connect(const DistEnv& env, const InitOptions& options);

/// read_env() + connect(), and makes the result the process-wide group (world()). Also tags log
/// lines with the rank and silences info logs on ranks other than 0.
std::shared_ptr<Group> init_from_env(const InitOptions& options = {});

/// The process-wide group: the one of the last init_from_env/set_world, else single-process.
Group& world();
std::shared_ptr<Group> world_ptr();
void set_world(std::shared_ptr<Group> group);
/// A barrier (when distributed), then back to the single-process group.
void shutdown();

/// The device of this rank: "cuda" without an index becomes cuda:LOCAL_RANK in a distributed run;
/// anything else is kept.
c10::Device rank_device(const c10::Device& device, const Group& group);

/// Intra-op threads per rank when the config says 0 (= all cores): the cores divided among the
/// ranks on this machine (at least 1).
int threads_per_rank(int configured, const Group& group);

}  // namespace contra::dist
