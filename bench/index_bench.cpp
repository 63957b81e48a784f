// Scale study of contra::index::VectorIndex (docs/search.md#scale): build time, batch queries/s,
// single-query latency and recall@10 against the exact (flat) answer, for flat / IVF / HNSW on
// synthetic D = 128 vectors with structure:
//   x = c_k + 0.5 · W z + 0.1 · e,   k ~ U{0..1023}, c_k ~ N(0, 0.25 · I_128), z ~ N(0, I_32),
//   W ~ N(0, 1/32)^{128×32} shared, e ~ N(0, I_128)
// (1024 overlapping clusters — centres ≈ 8 apart, spread ≈ 5.8 — with a 32-dimensional spread
// each, like real embeddings' low intrinsic dimension). Queries are 1000 fresh points of the same
// distribution; metric cosine (the default).
//
//   build/bin/contra_index_bench                          # 10k and 100k
//   build/bin/contra_index_bench --sizes=10000,100000,1000000 --queries=1000
//   build/bin/contra_index_bench --types=hnsw --ef-construction=40 --ef-search=64,128,256
//
// Google Benchmark binary (one iteration per case; the numbers are counters) that also prints a
// markdown table at the end.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "contra/index/vector_index.h"

namespace {

using contra::index::IndexOptions;
using contra::index::VectorIndex;

struct Settings {
  std::vector<std::int64_t> sizes = {10000, 100000};
  std::vector<std::string> types = {"flat", "ivf", "hnsw"};
  std::vector<std::int64_t> ef_search = {0};  // 0 = the default
  std::vector<std::int64_t> nprobe = {0};
  std::int64_t queries = 1000;
  std::int64_t single = 200;  // single-query latency over this many queries
  std::int64_t dim = 128;
  std::int64_t ef_construction = 0, hnsw_m = 0;
  std::string metric = "cosine";
};
Settings settings;

torch::Tensor synthetic(std::int64_t n, std::int64_t d, std::uint64_t seed) {
  auto structure = at::make_generator<at::CPUGeneratorImpl>(12345);
  auto centres = 0.5 * torch::randn({1024, d}, structure);
  auto w = torch::randn({d, 32}, structure) / std::sqrt(32.0);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::Tensor out = torch::empty({n, d});
  for (std::int64_t b = 0; b < n; b += 100000) {
    const std::int64_t m = std::min<std::int64_t>(100000, n - b);
    auto k = torch::randint(0, 1024, {m}, gen);
    auto z = torch::randn({m, 32}, gen);
    out.narrow(0, b, m).copy_(centres.index_select(0, k) + 0.5 * z.matmul(w.t()) +
                              0.1 * torch::randn({m, d}, gen));
  }
  return out;
}

struct Data {
  torch::Tensor x, q, truth;  // truth: (Q, 10) exact rows
  double flat_build = 0;
};
std::map<std::int64_t, std::shared_ptr<Data>> cache;

std::shared_ptr<Data> data_for(std::int64_t n) {
  auto& d = cache[n];
  if (d) return d;
  d = std::make_shared<Data>();
  d->x = synthetic(n, settings.dim, 1);
  d->q = synthetic(settings.queries, settings.dim, 2);
  IndexOptions o;
  o.metric = settings.metric;
  VectorIndex flat = VectorIndex::build(d->x, {}, {}, o);
  d->truth = flat.search_rows(d->q, 10).second;
  return d;
}

double recall_at_10(const torch::Tensor& got, const torch::Tensor& truth) {
  std::int64_t hit = 0;
  auto g = got.accessor<std::int64_t, 2>();
  auto t = truth.accessor<std::int64_t, 2>();
  for (std::int64_t i = 0; i < truth.size(0); ++i) {
    std::set<std::int64_t> want;
    for (std::int64_t j = 0; j < 10; ++j) want.insert(t[i][j]);
    for (std::int64_t j = 0; j < std::min<std::int64_t>(10, got.size(1)); ++j)
      hit += static_cast<std::int64_t>(want.count(g[i][j]));
  }
  return static_cast<double>(hit) / static_cast<double>(truth.numel());
}

struct Row {
  std::int64_t n = 0;
  std::string type, params;
  double build_s = 0, qps = 0, latency_ms = 0, recall = 0;
};
std::vector<Row> rows;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

Row measure(const VectorIndex& ix, const Data& d, std::int64_t n, const std::string& type,
            double build) {
  auto t0 = std::chrono::steady_clock::now();
  auto got = ix.search_rows(d.q, 10).second;
  const double batch = seconds_since(t0);
  const std::int64_t single = std::min(settings.single, d.q.size(0));
  t0 = std::chrono::steady_clock::now();
  for (std::int64_t i = 0; i < single; ++i) ix.search_rows(d.q.narrow(0, i, 1), 10);
  const double one = seconds_since(t0) / static_cast<double>(single);
  Row r;
  r.n = n;
  r.type = type;
  const auto& m = ix.meta();
  if (type == "ivf")
    r.params = "nlist " + m.at("nlist") + ", nprobe " + m.at("nprobe");
  else if (type == "hnsw")
    r.params =
        "M " + m.at("hnsw_m") + ", efC " + m.at("ef_construction") + ", efS " + m.at("ef_search");
  else
    r.params = "exact";
  r.build_s = build;
  r.qps = static_cast<double>(d.q.size(0)) / batch;
  r.latency_ms = 1000 * one;
  r.recall = recall_at_10(got, d.truth);
  return r;
}

// One build, then every search-time variant (ivf nprobe / hnsw efSearch; 0 = the default).
void run_case(benchmark::State& state, std::int64_t n, std::string type) {
  auto d = data_for(n);
  for (auto _ : state) {
    IndexOptions o;
    o.type = type;
    o.metric = settings.metric;
    if (settings.ef_construction > 0) o.ef_construction = settings.ef_construction;
    if (settings.hnsw_m > 0) o.hnsw_m = settings.hnsw_m;
    auto t0 = std::chrono::steady_clock::now();
    VectorIndex ix = VectorIndex::build(d->x, {}, {}, o);
    const double build = seconds_since(t0);
    const std::int64_t default_nprobe = type == "ivf" ? std::stoll(ix.meta().at("nprobe")) : 0;
    const auto& variants = type == "ivf"    ? settings.nprobe
                           : type == "hnsw" ? settings.ef_search
                                            : std::vector<std::int64_t>{0};
    for (std::int64_t v : variants) {
      if (type == "ivf") {
        ix.set_search_params(v > 0 ? v : default_nprobe, 0);
      } else if (type == "hnsw") {
        ix.set_search_params(0, v > 0 ? v : o.ef_search);
      }
      Row r = measure(ix, *d, n, type, build);
      if (type == "ivf")
        r.params = "nlist " + ix.meta().at("nlist") + ", nprobe " +
                   std::to_string(v > 0 ? v : default_nprobe);
      if (type == "hnsw")
        r.params = "M " + ix.meta().at("hnsw_m") + ", efC " + ix.meta().at("ef_construction") +
                   ", efS " + std::to_string(v > 0 ? v : o.ef_search);
      rows.push_back(r);
      const std::string suffix = variants.size() > 1 ? "_" + std::to_string(v) : "";
      state.counters["build_s"] = r.build_s;
      state.counters["batch_qps" + suffix] = r.qps;
      state.counters["latency_ms" + suffix] = r.latency_ms;
      state.counters["recall10" + suffix] = r.recall;
    }
  }
}

std::vector<std::int64_t> parse_list(const std::string& s) {
  std::vector<std::int64_t> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::stoll(item));
  return out;
}
std::vector<std::string> parse_words(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* flag) -> const char* {
      const std::size_t n = std::strlen(flag);
      return a.compare(0, n, flag) == 0 ? argv[i] + n : nullptr;
    };
    if (const char* v = value("--sizes=")) {
      settings.sizes = parse_list(v);
    } else if (const char* v = value("--types=")) {
      settings.types = parse_words(v);
    } else if (const char* v = value("--queries=")) {
      settings.queries = std::stoll(v);
    } else if (const char* v = value("--ef-search=")) {
      settings.ef_search = parse_list(v);
    } else if (const char* v = value("--nprobe=")) {
      settings.nprobe = parse_list(v);
    } else if (const char* v = value("--ef-construction=")) {
      settings.ef_construction = std::stoll(v);
    } else if (const char* v = value("--hnsw-m=")) {
      settings.hnsw_m = std::stoll(v);
    } else if (const char* v = value("--single=")) {
      settings.single = std::stoll(v);
    } else if (const char* v = value("--metric=")) {
      settings.metric = v;
    } else {
      rest.push_back(argv[i]);
    }
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  for (std::int64_t n : settings.sizes) {
    for (const auto& type : settings.types) {
      const std::string name = "index/" + type + "/n:" + std::to_string(n);
      benchmark::RegisterBenchmark(name.c_str(), run_case, n, type)
          ->Iterations(1)
          ->Unit(benchmark::kSecond);
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::printf(
      "\n| vectors | type | parameters | build s | batch queries/s | single query ms | "
      "recall@10 |\n|---:|---|---|---:|---:|---:|---:|\n");
  for (const auto& r : rows)
    std::printf("| %lld | %s | %s | %.2f | %.0f | %.3f | %.3f |\n", static_cast<long long>(r.n),
                r.type.c_str(), r.params.c_str(), r.build_s, r.qps, r.latency_ms, r.recall);
  return 0;
}
