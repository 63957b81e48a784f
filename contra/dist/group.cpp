#include "contra/dist/group.h"

#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "contra/core/error.h"
#include "contra/core/logging.h"
#include "contra/dist/c10d_group.h"

namespace contra::dist {

namespace {

// An integer environment variable; `fallback` when unset (nullopt fallback = required).
int env_int(const std::function<const char*(const char*)>& getenv, const char* name,
            std::optional<int> fallback, const char* expected) {
  const char* value = getenv(name);
  if (value == nullptr || *value == '\0') {
    if (fallback) return *fallback;
    throw ConfigError(fmt::format(
        "distributed: environment variable {} is not set (expected {}; torchrun and contra launch "
        "set it)",
        name, expected));
  }
  errno = 0;
  char* end = nullptr;
  long parsed = std::strtol(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || parsed < 0 || parsed > 1 << 30) {
    throw ConfigError(
        fmt::format("distributed: {}='{}' is not valid (expected {})", name, value, expected));
  }
  return static_cast<int>(parsed);
}

class SingleGroup : public Group {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  std::string backend() const override { return "single"; }
  std::chrono::milliseconds timeout() const override { return std::chrono::milliseconds(0); }
  c10::Device device() const override { return c10::Device(c10::kCPU); }
  void all_reduce_sum_(torch::Tensor&) override {}
  void broadcast_(torch::Tensor&, int root) override {
    check<ConfigError>(root == 0, "broadcast: root rank {} outside a group of 1", root);
  }
  std::vector<torch::Tensor> all_gather(const torch::Tensor& tensor) override { return {tensor}; }
  void barrier() override {}
  void main_first(const std::string&, const std::function<void()>& prepare,
                  std::chrono::milliseconds) override {
    prepare();
  }
};

std::mutex world_mutex;
std::shared_ptr<Group>& world_slot() {
  static std::shared_ptr<Group> group = make_single_group();
  return group;
}

}  // namespace

DistEnv read_env(const std::function<const char*(const char*)>& getenv) {
  DistEnv env;
  env.world_size = env_int(getenv, "WORLD_SIZE", 1, "the number of ranks, >= 1");
  check<ConfigError>(env.world_size >= 1, "distributed: WORLD_SIZE=0 (expected >= 1)");
  if (env.world_size == 1) {
    env.rank = env_int(getenv, "RANK", 0, "0 when WORLD_SIZE is 1");
    check<ConfigError>(env.rank == 0, "distributed: RANK={} with WORLD_SIZE=1 (expected 0)",
                       env.rank);
    return env;
  }
  env.rank = env_int(getenv, "RANK", std::nullopt,
                     fmt::format("this process's rank in [0, {})", env.world_size).c_str());
  check<ConfigError>(env.rank < env.world_size,
                     "distributed: RANK={} is outside [0, WORLD_SIZE={}) (expected 0..{})",
                     env.rank, env.world_size, env.world_size - 1);
  env.local_world_size =
      env_int(getenv, "LOCAL_WORLD_SIZE", env.world_size, "the ranks on this machine, >= 1");
  check<ConfigError>(env.local_world_size >= 1 && env.local_world_size <= env.world_size,
                     "distributed: LOCAL_WORLD_SIZE={} (expected 1..WORLD_SIZE={})",
                     env.local_world_size, env.world_size);
  env.local_rank = env_int(getenv, "LOCAL_RANK", env.rank % env.local_world_size,
                           "this process's rank on its machine");
  check<ConfigError>(env.local_rank < env.local_world_size,
                     "distributed: LOCAL_RANK={} is outside [0, LOCAL_WORLD_SIZE={})",
                     env.local_rank, env.local_world_size);
  const char* addr = getenv("MASTER_ADDR");
  if (addr == nullptr || *addr == '\0') {
    throw ConfigError(
        "distributed: environment variable MASTER_ADDR is not set (expected the host name or "
        "address of rank 0, e.g. 127.0.0.1 on one machine)");
  }
  env.master_addr = addr;
  env.master_port = env_int(getenv, "MASTER_PORT", std::nullopt, "a TCP port 1..65535");
  check<ConfigError>(env.master_port >= 1 && env.master_port <= 65535,
                     "distributed: MASTER_PORT={} (expected a TCP port 1..65535)", env.master_port);
  const char* agent = getenv("TORCHELASTIC_USE_AGENT_STORE");
  env.agent_store = agent != nullptr && std::string(agent) == "True";
  env.restart_count = env_int(getenv, "TORCHELASTIC_RESTART_COUNT", 0, "a count >= 0");
  return env;
}

DistEnv read_env() {
  return read_env([](const char* name) { return std::getenv(name); });
}

std::shared_ptr<Group> make_single_group() { return std::make_shared<SingleGroup>(); }

std::shared_ptr<Group> connect(const DistEnv& env, const InitOptions& options) {
  if (!env.distributed()) return make_single_group();
  check<ConfigError>(options.timeout.count() > 0,
                     "distributed: the timeout must be > 0 (got {} ms)", options.timeout.count());
  InitOptions o = options;
  if (o.device.is_cuda() && !o.device.has_index()) {
    o.device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  }
  return connect_c10d(env, o);
}

std::shared_ptr<Group> init_from_env(const InitOptions& options) {
  DistEnv env = read_env();
  std::shared_ptr<Group> group = connect(env, options);
  set_world(group);
  if (env.distributed()) {
    set_log_rank(env.rank);
    log().info("distributed: rank {} of {} ({} backend, store {}:{}, timeout {} s)", env.rank,
               env.world_size, group->backend(), env.master_addr, env.master_port,
               static_cast<double>(options.timeout.count()) / 1000.0);
  }
  return group;
}

Group& world() { return *world_ptr(); }

std::shared_ptr<Group> world_ptr() {
  std::lock_guard<std::mutex> lock(world_mutex);
  return world_slot();
}

void set_world(std::shared_ptr<Group> group) {
  std::lock_guard<std::mutex> lock(world_mutex);
  world_slot() = group ? std::move(group) : make_single_group();
}

void shutdown() {
  std::shared_ptr<Group> group = world_ptr();
  if (group->size() > 1) group->barrier();
  set_world(nullptr);
}

c10::Device rank_device(const c10::Device& device, const Group& group) {
  if (device.is_cuda() && !device.has_index() && group.size() > 1) {
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(group.local_rank()));
  }
  return device;
}

int threads_per_rank(int configured, const Group& group) {
  if (configured > 0) return configured;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, group.local_size()));
}

}  // namespace contra::dist
