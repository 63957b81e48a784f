// The c10d group: the only translation unit that includes c10d's headers. Its backends are compiled
// in here (not by the build flags of every file): Gloo always (Debian's libtorch and pip's torch
// both ship it), NCCL when CMake found a CUDA LibTorch with its header (CONTRA_WITH_NCCL).
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include "contra/dist/c10d_group.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(CONTRA_WITH_NCCL)
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "contra/core/error.h"

namespace contra::dist {

namespace {

using ms = std::chrono::milliseconds;

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }
std::string string_of(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

// The first line of an exception text, without c10's backtrace.
std::string first_line(const std::exception& e) {
  std::string what;
  if (auto* c10 = dynamic_cast<const c10::Error*>(&e)) {
    what = c10->what_without_backtrace();
  } else {
    what = e.what();
  }
  auto nl = what.find('\n');
  return nl == std::string::npos ? what : what.substr(0, nl);
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string out = ranks.size() == 1 ? "rank " : "ranks ";
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    out += (i ? ", " : "") + std::to_string(ranks[i]);
  }
  return out;
}

std::string seconds(ms t) { return fmt::format("{:g} s", static_cast<double>(t.count()) / 1000.0); }

// Heartbeat and progress of this rank, published in the store by a background thread; read back by
// a rank whose collective failed to name the peer at fault.
class Monitor {
 public:
  Monitor(const DistEnv& env, double interval_s, ms timeout)
      : env_(env), interval_(ms(static_cast<int64_t>(interval_s * 1000))) {
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(env.master_port);
    o.isServer = false;
    o.waitWorkers = false;
    o.timeout = std::min(timeout, ms(10000));
    store_ = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
    store_->add(hb_key(env.rank), 1);
    thread_ = std::thread([this] { loop(); });
  }
  ~Monitor() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  void set_sequence(int64_t seq) { seq_.store(seq); }

  // Which peers are at fault for a collective that failed at sequence number `mine`.
  std::string diagnose(int64_t mine) {
    const int n = env_.world_size;
    std::vector<int64_t> hb1(static_cast<std::size_t>(n)), hb2(hb1.size()), seq(hb1.size());
    try {
      {
        std::lock_guard<std::mutex> lock(store_mutex_);
        for (int r = 0; r < n; ++r) hb1[static_cast<std::size_t>(r)] = store_->add(hb_key(r), 0);
      }
      // Two and a half heartbeats: a live rank has published at least twice by then.
      std::this_thread::sleep_for(interval_ * 5 / 2);
      std::lock_guard<std::mutex> lock(store_mutex_);
      for (int r = 0; r < n; ++r) {
        hb2[static_cast<std::size_t>(r)] = store_->add(hb_key(r), 0);
        seq[static_cast<std::size_t>(r)] = store_->add(seq_key(r), 0);
      }
    } catch (const std::exception&) {
      if (env_.agent_store) {
        return fmt::format("the torchrun agent's store at {}:{} does not answer", env_.master_addr,
                           env_.master_port);
      }
      if (env_.rank == 0) return "the store cannot be read (this rank serves it)";
      return fmt::format(
          "rank 0 is gone: the rendezvous store it serves at {}:{} does not answer (rank 0 died, "
          "was stopped or hangs)",
          env_.master_addr, env_.master_port);
    }
    std::vector<int> dead, behind;
    for (int r = 0; r < n; ++r) {
      if (r == env_.rank) continue;
      const auto i = static_cast<std::size_t>(r);
      if (hb2[i] == hb1[i]) {
        dead.push_back(r);
      } else if (seq[i] < mine) {
        behind.push_back(r);
      }
    }
    std::vector<std::string> parts;
    if (!dead.empty()) {
      parts.push_back(
          fmt::format("{} stopped answering (no heartbeat for {}: the process died or is stopped)",
                      rank_list(dead), seconds(interval_ * 5 / 2)));
    }
    if (!behind.empty()) {
      std::string at;
      for (int r : behind) {
        at += fmt::format("{}rank {} at #{}", at.empty() ? "" : ", ", r,
                          seq[static_cast<std::size_t>(r)]);
      }
      parts.push_back(fmt::format(
          "{} alive but never reached collective #{} ({}: hung, deadlocked or far slower)",
          rank_list(behind), mine, at));
    }
    if (parts.empty()) {
      return "every rank is alive and reached this collective (the transport failed, or a peer "
             "exited after reaching it)";
    }
    std::string out = parts[0];
    for (std::size_t i = 1; i < parts.size(); ++i) out += "; " + parts[i];
    return out;
  }

 private:
  std::string hb_key(int r) const {
    return fmt::format("contra/{}/heartbeat/{}", env_.restart_count, r);
  }
  std::string seq_key(int r) const {
    return fmt::format("contra/{}/collectives/{}", env_.restart_count, r);
  }

  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    int failures = 0;
    while (!cv_.wait_for(lock, interval_, [this] { return stop_; })) {
      try {
        std::lock_guard<std::mutex> store_lock(store_mutex_);
        store_->add(hb_key(env_.rank), 1);
        const int64_t seq = seq_.load();
        if (seq != published_) {
          store_->add(seq_key(env_.rank), seq - published_);
          published_ = seq;
        }
        failures = 0;
      } catch (const std::exception&) {
        // Three misses in a row: the store is gone (rank 0 exited), nothing left to publish to.
        if (++failures >= 3) return;
      }
    }
  }

  DistEnv env_;
  ms interval_;
  c10::intrusive_ptr<c10d::TCPStore> store_;
  std::mutex store_mutex_;
  std::atomic<int64_t> seq_{0};
  int64_t published_ = 0;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

template <class PG>
class C10dGroup final : public Group {
 public:
  C10dGroup(DistEnv env, InitOptions options, c10::intrusive_ptr<c10d::Store> store,
            c10::intrusive_ptr<PG> pg, std::string backend)
      : env_(std::move(env)),
        options_(options),
        store_(std::move(store)),
        pg_(std::move(pg)),
        backend_(std::move(backend)) {
    if (options_.heartbeat_s > 0) {
      monitor_ = std::make_unique<Monitor>(env_, options_.heartbeat_s, options_.timeout);
    }
  }
  ~C10dGroup() override {
    monitor_.reset();
    pg_.reset();
    store_.reset();
  }

  int rank() const override { return env_.rank; }
  int size() const override { return env_.world_size; }
  int local_rank() const override { return env_.local_rank; }
  int local_size() const override { return env_.local_world_size; }
  std::string backend() const override { return backend_; }
  std::chrono::milliseconds timeout() const override { return options_.timeout; }
  c10::Device device() const override {
    return backend_ == "nccl" ? options_.device : c10::Device(c10::kCPU);
  }

  void all_reduce_sum_(torch::Tensor& tensor) override {
    if (!tensor.is_contiguous()) {
      torch::Tensor c = tensor.contiguous();
      all_reduce_sum_(c);
      tensor.copy_(c);
      return;
    }
    std::vector<at::Tensor> tensors{tensor};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    run("all_reduce", [&] { return pg_->allreduce(tensors, o); });
  }

  void broadcast_(torch::Tensor& tensor, int root) override {
    check<ConfigError>(root >= 0 && root < size(), "broadcast: root rank {} outside [0, {})", root,
                       size());
    if (!tensor.is_contiguous()) {
      torch::Tensor c = tensor.contiguous();
      broadcast_(c, root);
      tensor.copy_(c);
      return;
    }
    std::vector<at::Tensor> tensors{tensor};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.rootTensor = 0;
    run("broadcast", [&] { return pg_->broadcast(tensors, o); });
  }

  std::vector<torch::Tensor> all_gather(const torch::Tensor& tensor) override {
    // Shapes first: a collective over tensors of different sizes would fail (or worse, not).
    constexpr int64_t kMaxDims = 8;
    check<ConfigError>(tensor.dim() <= kMaxDims, "all_gather: tensors of more than {} dims",
                       kMaxDims);
    std::vector<int64_t> meta(kMaxDims + 2, -1);
    meta[0] = tensor.dim();
    meta[1] = static_cast<int64_t>(tensor.scalar_type());
    for (int64_t d = 0; d < tensor.dim(); ++d)
      meta[static_cast<std::size_t>(d + 2)] = tensor.size(d);
    torch::Tensor mine = torch::tensor(meta, torch::kLong).to(tensor.device());
    std::vector<std::vector<at::Tensor>> shape_out(1);
    for (int r = 0; r < size(); ++r) shape_out[0].push_back(torch::empty_like(mine));
    std::vector<at::Tensor> shape_in{mine};
    run("all_gather (shapes)", [&] { return pg_->allgather(shape_out, shape_in); });
    for (int r = 0; r < size(); ++r) {
      if (!shape_out[0][static_cast<std::size_t>(r)].equal(mine)) {
        torch::Tensor other = shape_out[0][static_cast<std::size_t>(r)].cpu();
        std::vector<int64_t> sizes;
        for (int64_t d = 0; d < other[0].item<int64_t>(); ++d)
          sizes.push_back(other[d + 2].item<int64_t>());
        throw DistributedError(
            fmt::format("distributed: rank {} of {}: all_gather of a tensor [{}] ({}) but rank {} "
                        "has [{}] ({}); "
                        "every rank must give the same shape (the same per-rank batch size)",
                        rank(), size(), fmt::join(tensor.sizes(), ", "),
                        c10::toString(tensor.scalar_type()), r, fmt::join(sizes, ", "),
                        c10::toString(static_cast<c10::ScalarType>(other[1].item<int64_t>()))));
      }
    }
    std::vector<std::vector<at::Tensor>> out(1);
    for (int r = 0; r < size(); ++r) {
      out[0].push_back(torch::empty(tensor.sizes(), tensor.options()));
    }
    std::vector<at::Tensor> in{tensor.contiguous()};
    run("all_gather", [&] { return pg_->allgather(out, in); });
    return out[0];
  }

  void barrier() override {
    run("barrier", [&] { return pg_->barrier(c10d::BarrierOptions()); });
  }

  void main_first(const std::string& what, const std::function<void()>& prepare,
                  std::chrono::milliseconds wait) override {
    // Each machine's local rank 0 prepares first (machines may not share a file system); the other
    // ranks of that machine wait for it, then prepare themselves (finding the data ready); finally
    // every rank waits for every machine's leader, so no rank runs ahead into a collective while
    // another machine is still preparing.
    const int round = main_first_count_++;
    const int nodes = std::max(1, size() / std::max(1, local_size()));
    const int node = (rank() - local_rank()) / std::max(1, local_size());
    auto key = [&](int n) { return fmt::format("contra/main_first/{}/{}", round, n); };
    auto wait_for = [&](int n) {
      const int leader = n * local_size();
      std::string status;
      try {
        store_->wait({key(n)}, wait);
        status = string_of(store_->get(key(n)));
      } catch (const std::exception& e) {
        throw DistributedError(fmt::format(
            "distributed: rank {} of {}: waited {} for rank {} to finish {} and it did not (it "
            "died, hangs or needs longer) [store: {}]",
            rank(), size(), seconds(wait), leader, what, first_line(e)));
      }
      if (status != "ok") {
        throw DistributedError(fmt::format("distributed: rank {} of {}: rank {} failed {}: {}",
                                           rank(), size(), leader, what, status));
      }
    };
    if (local_rank() == 0) {
      try {
        prepare();
      } catch (const std::exception& e) {
        store_->set(key(node), bytes_of("error: " + first_line(e)));
        throw;
      }
      store_->set(key(node), bytes_of("ok"));
    } else {
      wait_for(node);
      prepare();
    }
    for (int n = 0; n < nodes; ++n) {
      if (n != node) wait_for(n);
    }
  }

 private:
  template <class F>
  void run(const char* op, F&& start) {
    ++sequence_;
    if (monitor_) monitor_->set_sequence(sequence_);
    try {
      auto work = start();
      work->wait();
    } catch (const std::exception& e) {
      const std::string cause = first_line(e);
      throw DistributedError(fmt::format(
          "distributed: rank {} of {}: {} (collective #{}) failed within the {} timeout: {} [{}: "
          "{}]",
          rank(), size(), op, sequence_, seconds(options_.timeout),
          monitor_ ? monitor_->diagnose(sequence_) : "no heartbeat to tell which rank", backend_,
          cause));
    }
  }

  DistEnv env_;
  InitOptions options_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<PG> pg_;
  std::string backend_;
  std::unique_ptr<Monitor> monitor_;
  int64_t sequence_ = 0;
  int64_t main_first_count_ = 0;
};

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

}  // namespace

bool nccl_available() {
#if defined(CONTRA_WITH_NCCL)
  return true;
#else
  return false;
#endif
}

std::shared_ptr<Group> connect_c10d(const DistEnv& env, const InitOptions& options) {
  const std::string where = fmt::format("{}:{}", env.master_addr, env.master_port);
  c10::intrusive_ptr<c10d::Store> store;
  try {
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(env.master_port);
    o.timeout = options.timeout;
    if (env.agent_store) {
      // torchrun's agent serves the store; its own keys live beside the workers' prefix.
      o.isServer = false;
      o.waitWorkers = false;
      store = c10::make_intrusive<c10d::PrefixStore>(
          fmt::format("/worker/attempt_{}", env.restart_count),
          c10::make_intrusive<c10d::TCPStore>(env.master_addr, o));
    } else {
      o.isServer = env.rank == 0;
      o.numWorkers = static_cast<std::size_t>(env.world_size);
      o.waitWorkers = true;
      store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
    }
  } catch (const std::exception& e) {
    throw DistributedError(
        fmt::format("distributed: rank {} of {}: rendezvous at {} failed within {}: {} ({})",
                    env.rank, env.world_size, where, seconds(options.timeout),
                    env.rank == 0 && !env.agent_store
                        ? "could not serve the store (is MASTER_PORT in use?) or not every rank "
                          "joined"
                        : "rank 0's store did not answer (is MASTER_ADDR:MASTER_PORT right, and is "
                          "rank 0 running?)",
                    first_line(e)));
  }
  try {
    if (options.device.is_cuda()) {
#if defined(CONTRA_WITH_NCCL)
      // Without blocking wait, an NCCL collective returns at once and a dead peer is never noticed
      // by wait(): make wait() block and honour the timeout (1.13 and 2.x spellings).
      ::setenv("NCCL_BLOCKING_WAIT", "1", /*overwrite=*/0);
      ::setenv("TORCH_NCCL_BLOCKING_WAIT", "1", /*overwrite=*/0);
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = options.timeout;
      auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size, o);
      return std::make_shared<C10dGroup<c10d::ProcessGroupNCCL>>(env, options, store, pg, "nccl");
#else
      throw UnavailableError(
          "distributed: the device is CUDA but this LibTorch has no NCCL process group (build "
          "contra against a CUDA LibTorch, or train on train.device=cpu with Gloo)");
#endif
    }
    auto o = c10d::ProcessGroupGloo::Options::create(options.timeout);
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (ifname != nullptr && *ifname != '\0') {
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else if (is_loopback(env.master_addr)) {
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    o->threads = 2;
    auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, o);
    return std::make_shared<C10dGroup<c10d::ProcessGroupGloo>>(env, options, store, pg, "gloo");
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw DistributedError(fmt::format(
        "distributed: rank {} of {}: connecting the process group through {} failed within {}: {}",
        env.rank, env.world_size, where, seconds(options.timeout), first_line(e)));
  }
}

}  // namespace contra::dist
