#pragma once
/// `contra launch`: starts the local ranks of a distributed run, like torchrun, for users without
/// Python. Every rank is the same program with torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK,
/// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) in its environment.
///
/// When a rank fails (non-zero exit or a signal), the others get `grace_s` seconds to stop on their
/// own (they normally fail within a few seconds with the DistributedError naming that rank); then
/// they are sent SIGTERM and, 5 s later, SIGKILL. The launcher returns the first failed rank's exit
/// code (128 + signal when it was killed), 0 when every rank succeeded. SIGINT/SIGTERM sent to the
/// launcher are passed on to the ranks, and a rank dies with its launcher (PR_SET_PDEATHSIG).
///
///   LaunchOptions o;
///   o.nproc = 2;
///   o.args = {"train", "--config", "configs/simclr_mnist.yaml"};
///   int code = contra::dist::launch(o).exit_code;
#include <string>
#include <vector>

namespace contra::dist {

struct LaunchOptions {
  int nproc = 1;      // ranks on this machine
  int nnodes = 1;     // machines
  int node_rank = 0;  // this machine's index in [0, nnodes)
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // 0: a free port of this machine (one machine only)
  double grace_s = 30;  // after a failure, how long the other ranks may take to stop by themselves
  std::string program;  // default: this executable (/proc/self/exe)
  std::vector<std::string> args;  // the ranks' arguments (without the program)
};

struct RankOutcome {
  int rank = 0;
  int pid = 0;
  int exit_code = 0;  // when it exited
  int signal = 0;     // when a signal ended it
  bool stopped_by_launcher = false;
};

struct LaunchResult {
  int exit_code = 0;
  int first_failed_rank = -1;
  std::vector<RankOutcome> ranks;
};

/// Runs the local ranks to completion. Throws ConfigError for a bad layout (nproc < 1, node_rank
/// outside [0, nnodes), several machines without master_port) and UnavailableError when a rank
/// cannot be started.
LaunchResult launch(const LaunchOptions& options);

/// A TCP port that was free on 127.0.0.1 a moment ago (bound and released).
int free_port();

}  // namespace contra::dist
