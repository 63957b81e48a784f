#include "contra/dist/launch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "contra/core/error.h"
#include "contra/core/logging.h"

extern char** environ;

namespace contra::dist {

namespace {

volatile sig_atomic_t forwarded_signal = 0;
void on_signal(int sig) { forwarded_signal = sig; }

bool is_rank_variable(const std::string& entry) {
  // torchrun's agent variables would make the ranks look for the agent's store.
  if (entry.rfind("TORCHELASTIC_", 0) == 0) return true;
  for (const char* name : {"RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "LOCAL_WORLD_SIZE=",
                           "MASTER_ADDR=", "MASTER_PORT=", "GROUP_RANK=", "ROLE_RANK="}) {
    if (entry.rfind(name, 0) == 0) return true;
  }
  return false;
}

std::string describe(const RankOutcome& r) {
  if (r.signal != 0) {
    return fmt::format("killed by signal {} ({}){}", r.signal, strsignal(r.signal),
                       r.stopped_by_launcher ? ", stopped by the launcher" : "");
  }
  return fmt::format("exited with code {}", r.exit_code);
}

}  // namespace

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw IoError(fmt::format("launch: socket() failed ({})", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw IoError(fmt::format("launch: cannot find a free port ({})", std::strerror(errno)));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

LaunchResult launch(const LaunchOptions& o) {
  check<ConfigError>(o.nproc >= 1, "launch: --nproc must be >= 1 (got {})", o.nproc);
  check<ConfigError>(o.nnodes >= 1, "launch: --nnodes must be >= 1 (got {})", o.nnodes);
  check<ConfigError>(o.node_rank >= 0 && o.node_rank < o.nnodes,
                     "launch: --node-rank {} is outside [0, --nnodes {})", o.node_rank, o.nnodes);
  check<ConfigError>(o.nnodes == 1 || o.master_port > 0,
                     "launch: several machines need --master-port (the same on every machine) and "
                     "--master-addr (rank 0's machine)");
  check<ConfigError>(o.master_port >= 0 && o.master_port <= 65535,
                     "launch: --master-port {} (expected 1..65535, or 0 for a free port)",
                     o.master_port);
  check<ConfigError>(o.grace_s >= 0, "launch: --grace must be >= 0 (got {})", o.grace_s);
  check<ConfigError>(!o.args.empty(),
                     "launch: no command for the ranks (contra launch --nproc N "
                     "-- train --config FILE)");
  const std::string program = o.program.empty() ? "/proc/self/exe" : o.program;
  const int port = o.master_port > 0 ? o.master_port : free_port();
  const int world = o.nproc * o.nnodes;

  std::vector<std::string> base_env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!is_rank_variable(*e)) base_env.emplace_back(*e);
  }
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const auto& a : o.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  forwarded_signal = 0;
  struct sigaction action {
  }, old_int{}, old_term{};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, &old_int);
  ::sigaction(SIGTERM, &action, &old_term);

  LaunchResult result;
  std::vector<bool> running;
  const pid_t parent = ::getpid();
  for (int local = 0; local < o.nproc; ++local) {
    const int rank = o.node_rank * o.nproc + local;
    std::vector<std::string> env = base_env;
    env.push_back(fmt::format("RANK={}", rank));
    env.push_back(fmt::format("WORLD_SIZE={}", world));
    env.push_back(fmt::format("LOCAL_RANK={}", local));
    env.push_back(fmt::format("LOCAL_WORLD_SIZE={}", o.nproc));
    env.push_back(fmt::format("GROUP_RANK={}", o.node_rank));
    env.push_back(fmt::format("MASTER_ADDR={}", o.master_addr));
    env.push_back(fmt::format("MASTER_PORT={}", port));
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) {
      const int err = errno;
      for (auto& r : result.ranks) {
        ::kill(r.pid, SIGKILL);
        ::waitpid(r.pid, nullptr, 0);
      }
      ::sigaction(SIGINT, &old_int, nullptr);
      ::sigaction(SIGTERM, &old_term, nullptr);
      errno = err;
      throw UnavailableError(
          fmt::format("launch: cannot start rank {} ({})", rank, std::strerror(errno)));
    }
    if (pid == 0) {
      // Only async-signal-safe calls until exec.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(127);
      ::signal(SIGINT, SIG_DFL);
      ::signal(SIGTERM, SIG_DFL);
      ::execve(program.c_str(), argv.data(), envp.data());
      ::_exit(127);
    }
    RankOutcome r;
    r.rank = rank;
    r.pid = pid;
    result.ranks.push_back(r);
    running.push_back(true);
  }
  log().info("launch: {} rank(s) of {} on this machine, store {}:{}", o.nproc, world, o.master_addr,
             port);

  using clock = std::chrono::steady_clock;
  std::optional<clock::time_point> failed_at, terminated_at;
  int alive = o.nproc;
  while (alive > 0) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      for (std::size_t i = 0; i < result.ranks.size(); ++i) {
        RankOutcome& r = result.ranks[i];
        if (r.pid != pid || !running[i]) continue;
        running[i] = false;
        --alive;
        if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
        if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
        if (r.exit_code == 127 && !WIFSIGNALED(status) && !failed_at) {
          log().error("launch: rank {} could not run '{}'", r.rank, program);
        }
        const bool failed = r.exit_code != 0 || (r.signal != 0 && !r.stopped_by_launcher);
        if (failed && result.first_failed_rank < 0) {
          result.first_failed_rank = r.rank;
          result.exit_code = r.signal != 0 ? 128 + r.signal : r.exit_code;
          failed_at = clock::now();
          if (alive > 0) {
            log().error(
                "launch: rank {} {}; the other ranks get {} s to stop before they are "
                "terminated",
                r.rank, describe(r), o.grace_s);
          }
        }
      }
      continue;
    }
    if (pid < 0 && errno != EINTR && errno != ECHILD) break;
    if (pid < 0 && errno == ECHILD) break;
    if (forwarded_signal != 0) {
      const int sig = forwarded_signal;
      forwarded_signal = 0;
      log().warn("launch: passing signal {} to the ranks", sig);
      for (std::size_t i = 0; i < result.ranks.size(); ++i) {
        if (running[i]) ::kill(result.ranks[i].pid, sig);
      }
      if (!failed_at) {
        failed_at = clock::now();
        if (result.exit_code == 0) result.exit_code = 128 + sig;
      }
    }
    const auto now = clock::now();
    if (failed_at && !terminated_at &&
        now - *failed_at >= std::chrono::duration<double>(o.grace_s)) {
      for (std::size_t i = 0; i < result.ranks.size(); ++i) {
        if (!running[i]) continue;
        log().error("launch: stopping rank {} (pid {})", result.ranks[i].rank, result.ranks[i].pid);
        result.ranks[i].stopped_by_launcher = true;
        ::kill(result.ranks[i].pid, SIGTERM);
      }
      terminated_at = now;
    }
    if (terminated_at && now - *terminated_at >= std::chrono::seconds(5)) {
      for (std::size_t i = 0; i < result.ranks.size(); ++i) {
        if (running[i]) ::kill(result.ranks[i].pid, SIGKILL);
      }
      terminated_at = now;  // and again every 5 s while one survives
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  if (result.first_failed_rank >= 0) {
    for (const auto& r : result.ranks) log().error("launch: rank {}: {}", r.rank, describe(r));
  }
  return result;
}

}  // namespace contra::dist
