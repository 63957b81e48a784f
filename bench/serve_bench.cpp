// The embedding service's throughput: POST /search over loopback HTTP (a new connection per
// request, as curl makes) with 1, 2, 4 and 8 concurrent clients, against the same index searched
// in-process — the difference is the cost of HTTP + JSON. Index: 100,000 synthetic vectors of
// dimension 128 (a Gaussian mixture), HNSW and flat, cosine. With CONTRA_BENCH_CHECKPOINT=RUN (an
// image run, e.g. runs/simclr_mnist) it also measures POST /embed of a 28×28 PNG.
//
//   build/bin/contra_serve_bench --benchmark_counters_tabular=true
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include <benchmark/benchmark.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/data/images.h"
#include "contra/embed/encoder.h"
#include "contra/index/vector_index.h"
#include "contra/serve/service.h"

namespace {

using namespace contra;

constexpr std::int64_t kItems = 100000, kDim = 128;

struct Served {
  std::shared_ptr<index::VectorIndex> index;
  std::unique_ptr<serve::HttpServer> server;
  std::thread thread;
  int port = 0;
  torch::Tensor queries;  // (1000, D)
  std::vector<std::string> bodies;
  ~Served() {
    if (server) {
      server->stop();
      thread.join();
    }
  }
};

std::shared_ptr<Served> start(const std::string& type,
                              std::shared_ptr<const embed::QueryEncoder> encoder = nullptr,
                              std::shared_ptr<index::VectorIndex> index = nullptr) {
  auto s = std::make_shared<Served>();
  torch::manual_seed(7);
  torch::Tensor centres = torch::randn({256, kDim});
  torch::Tensor assign = torch::randint(0, 256, {kItems}, torch::kLong);
  if (!index) {
    torch::Tensor x = centres.index_select(0, assign) + 0.5 * torch::randn({kItems, kDim});
    index::IndexOptions o;
    o.type = type;
    index = std::make_shared<index::VectorIndex>(index::VectorIndex::build(x, assign, {}, o));
  }
  s->index = index;
  if (index->dim() == kDim) {
    s->queries = centres.index_select(0, torch::randint(0, 256, {1000}, torch::kLong)) +
                 0.5 * torch::randn({1000, kDim});
    for (std::int64_t i = 0; i < 1000; ++i) {
      torch::Tensor q = s->queries[i].contiguous();
      std::vector<float> v(q.data_ptr<float>(), q.data_ptr<float>() + q.numel());
      s->bodies.push_back(nlohmann::json{{"vector", v}, {"k", 10}}.dump());
    }
  }
  serve::ServeOptions o;
  o.port = 0;
  o.threads = 8;
  s->server = std::make_unique<serve::HttpServer>(
      std::make_shared<serve::Service>(index, std::move(encoder), o));
  s->port = s->server->bind();
  Served* raw = s.get();
  s->thread = std::thread([raw] { raw->server->run(); });
  return s;
}

std::shared_ptr<Served> served(const std::string& type) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<Served>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto& s = cache[type];
  if (!s) s = start(type);
  return s;
}

void BM_HttpSearch(benchmark::State& state, const std::string& type) {
  auto s = served(type);
  std::int64_t i = state.thread_index() * 97, failures = 0;
  for (auto _ : state) {
    auto r = serve::http_request("127.0.0.1", s->port, "POST", "/search",
                                 s->bodies[static_cast<std::size_t>(i++ % 1000)]);
    failures += r.status != 200;
  }
  state.counters["requests/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["failures"] = static_cast<double>(failures);
}

void BM_InProcessSearch(benchmark::State& state, const std::string& type) {
  auto s = served(type);
  std::int64_t i = state.thread_index() * 97;
  for (auto _ : state) {
    auto hits = s->index->search(s->queries[i++ % 1000].unsqueeze(0), 10);
    benchmark::DoNotOptimize(hits);
  }
  state.counters["queries/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_HttpEmbed(benchmark::State& state) {
  const char* run = std::getenv("CONTRA_BENCH_CHECKPOINT");
  if (run == nullptr) {
    state.SkipWithError("set CONTRA_BENCH_CHECKPOINT=runs/<image run> to measure /embed");
    return;
  }
  static std::shared_ptr<Served> s;
  static std::string png;
  static std::once_flag once;
  std::call_once(once, [&] {
    auto encoder = embed::QueryEncoder::open(run, "", torch::kCPU);
    std::vector<std::string> ids = {"a", "b"};
    auto index = std::make_shared<index::VectorIndex>(
        index::VectorIndex::build(torch::randn({2, encoder->dim()}), {}, ids, {}));
    s = start("flat", encoder, index);
    png = data::encode_png(torch::randint(0, 255, {1, 28, 28}, torch::kLong).to(torch::kUInt8));
  });
  std::int64_t failures = 0;
  for (auto _ : state) {
    auto r = serve::http_request("127.0.0.1", s->port, "POST", "/embed", png, "image/png");
    failures += r.status != 200;
  }
  state.counters["requests/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["failures"] = static_cast<double>(failures);
}

}  // namespace

BENCHMARK_CAPTURE(BM_InProcessSearch, hnsw, std::string("hnsw"))->Threads(1)->UseRealTime();
BENCHMARK_CAPTURE(BM_HttpSearch, hnsw, std::string("hnsw"))
    ->Threads(1)
    ->Threads(2)
    ->Threads(4)
    ->Threads(8)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_InProcessSearch, flat, std::string("flat"))->Threads(1)->UseRealTime();
BENCHMARK_CAPTURE(BM_HttpSearch, flat, std::string("flat"))->Threads(1)->Threads(4)->UseRealTime();
BENCHMARK(BM_HttpEmbed)->Threads(1)->Threads(4)->UseRealTime();

BENCHMARK_MAIN();
