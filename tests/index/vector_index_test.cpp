// contra::index::VectorIndex: exact flat search against brute force, IVF/HNSW recall, search by
// item, save/load, thread safety, corrupt folders and dimension mismatches.
#include <fstream>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/embed/embed.h"
#include "contra/index/vector_index.h"
#include "tests/support/support.h"

namespace contra::index {
namespace {

using contra::testing::TempDir;

// A Gaussian mixture: `clusters` centres N(0, 1) in D dims, points = centre + 0.3·N(0, 1).
torch::Tensor mixture(std::int64_t n, std::int64_t d, std::int64_t clusters, std::uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto centres = torch::randn({clusters, d}, gen);
  auto which = torch::randint(0, clusters, {n}, gen);
  return centres.index_select(0, which) + 0.3 * torch::randn({n, d}, gen);
}

// Exact top-k rows by torch: (Q, k).
torch::Tensor brute_force(const torch::Tensor& x, const torch::Tensor& q, std::int64_t k,
                          const std::string& metric) {
  if (metric == "cosine") {
    auto xn = x / x.norm(2, 1, true), qn = q / q.norm(2, 1, true);
    return std::get<1>(torch::topk(qn.matmul(xn.t()), k, 1));
  }
  return std::get<1>(torch::topk(torch::cdist(q, x).pow(2), k, 1, /*largest=*/false));
}

double recall(const torch::Tensor& got, const torch::Tensor& want) {
  std::int64_t hit = 0;
  for (std::int64_t i = 0; i < want.size(0); ++i) {
    std::set<std::int64_t> w;
    for (std::int64_t j = 0; j < want.size(1); ++j) w.insert(want[i][j].item<std::int64_t>());
    for (std::int64_t j = 0; j < got.size(1); ++j) hit += w.count(got[i][j].item<std::int64_t>());
  }
  return static_cast<double>(hit) / static_cast<double>(want.numel());
}

IndexOptions opts(const std::string& type, const std::string& metric) {
  IndexOptions o;
  o.type = type;
  o.metric = metric;
  return o;
}

class IndexTypes : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(IndexTypes, SearchByItemReturnsItselfFirstAndRecallIsHigh) {
  const auto [type, metric] = GetParam();
  auto x = mixture(3000, 16, 20, 1);
  auto labels = torch::arange(3000) % 7;
  VectorIndex ix = VectorIndex::build(x, labels, {}, opts(type, metric));
  EXPECT_EQ(ix.size(), 3000);
  EXPECT_EQ(ix.dim(), 16);
  EXPECT_EQ(ix.type(), type);
  EXPECT_EQ(ix.metric(), metric);
  for (std::int64_t r : {0, 7, 123, 999, 2048, 2999}) {
    const std::string id = std::to_string(r);
    EXPECT_TRUE(torch::equal(ix.vector_of(id), x[r]));
    auto hits = ix.search(ix.vector_of(id).unsqueeze(0), 5)[0];
    ASSERT_EQ(hits.size(), 5u);
    EXPECT_EQ(hits[0].id, id) << type << "/" << metric;
    EXPECT_EQ(hits[0].row, r);
    EXPECT_EQ(hits[0].label, r % 7);
    if (metric == "cosine") {
      EXPECT_NEAR(hits[0].score, 1.0, 1e-4);
      EXPECT_GE(hits[0].score, hits[4].score);
    } else {
      EXPECT_NEAR(hits[0].score, 0.0, 1e-3);
      EXPECT_LE(hits[0].score, hits[4].score);
    }
  }
  auto q = mixture(200, 16, 20, 1).narrow(0, 0, 200) + 0.1 * torch::randn({200, 16});
  auto want = brute_force(x, q, 10, metric);
  auto got = ix.search_rows(q, 10).second;
  const double r = recall(got, want);
  if (type == "flat") {
    // Exact search: every returned neighbour is within float rounding of the true k-th distance
    // (a near-tie at the k-th place may swap members between FAISS's and torch's rounding).
    auto xd = x.to(torch::kDouble), qd = q.to(torch::kDouble);
    if (metric == "cosine") {
      xd = xd / xd.norm(2, 1, true);
      qd = qd / qd.norm(2, 1, true);
    }
    auto dist = metric == "cosine" ? -qd.matmul(xd.t()) : torch::cdist(qd, xd).pow(2);  // (Q, N)
    auto kth = std::get<0>(dist.topk(10, 1, /*largest=*/false)).select(1, 9);
    auto worst = std::get<0>(dist.gather(1, got).max(1));
    EXPECT_TRUE((worst <= kth + 1e-5 * kth.abs().clamp_min(1.0)).all().item<bool>())
        << metric << " (recall against torch's ranking: " << r << ")";
    EXPECT_GE(r, 0.999);
  } else {
    EXPECT_GE(r, 0.9) << type << "/" << metric;
  }
}

INSTANTIATE_TEST_SUITE_P(All, IndexTypes,
                         ::testing::Combine(::testing::Values("flat", "ivf", "hnsw"),
                                            ::testing::Values("cosine", "l2")));

TEST(VectorIndex, FlatScoresAreExact) {
  auto x = mixture(500, 8, 5, 2);
  auto q = mixture(20, 8, 5, 3);
  VectorIndex cos = VectorIndex::build(x, {}, {}, opts("flat", "cosine"));
  auto [s, rows] = cos.search_rows(q, 3);
  auto xn = x / x.norm(2, 1, true), qn = q / q.norm(2, 1, true);
  auto sims = qn.matmul(xn.t());
  EXPECT_TRUE(torch::allclose(s, std::get<0>(torch::topk(sims, 3, 1)), 1e-4, 1e-5));
  EXPECT_TRUE(torch::equal(rows, brute_force(x, q, 3, "cosine")));
  VectorIndex l2 = VectorIndex::build(x, {}, {}, opts("flat", "l2"));
  auto [d2, rows2] = l2.search_rows(q, 3);
  auto dist = torch::cdist(q, x).pow(2);
  EXPECT_TRUE(torch::allclose(d2, std::get<0>(torch::topk(dist, 3, 1, false)), 1e-3, 1e-3));
  // HNSW: a wider beam after the build takes effect (and k beyond efSearch still gives k hits).
  IndexOptions narrow = opts("hnsw", "cosine");
  narrow.ef_search = 1;
  narrow.hnsw_m = 8;
  narrow.ef_construction = 16;
  auto big = mixture(4000, 16, 40, 8), bq = mixture(100, 16, 40, 9);
  VectorIndex h = VectorIndex::build(big, {}, {}, narrow);
  auto exact = brute_force(big, bq, 10, "cosine");
  const double before = recall(h.search_rows(bq, 10).second, exact);
  h.set_search_params(0, 400);
  const double after = recall(h.search_rows(bq, 10).second, exact);
  EXPECT_GT(after, before + 0.05) << after;
  EXPECT_GE(after, 0.9) << "before " << before;
  EXPECT_EQ(h.search(bq.narrow(0, 0, 1), 600)[0].size(), 600u);
  // k beyond the size: every item, once.
  EXPECT_EQ(cos.search(q.narrow(0, 0, 1), 10000)[0].size(), 500u);
  EXPECT_THROW(cos.search(q, 0), ConfigError);
}

TEST(VectorIndex, SaveLoadRoundTripAndEmbeddingsFile) {
  TempDir d;
  auto x = mixture(800, 12, 8, 4);
  embed::Embeddings e;
  e.vectors = x;
  e.labels = torch::arange(800) % 3;
  for (int i = 0; i < 800; ++i) e.ids.push_back("item/" + std::to_string(i));
  e.meta = {{"checkpoint", "/some/run.pt"}, {"features", "encoder"}, {"modality", "image"}};
  embed::write_embeddings(d.file("e.st"), e);
  for (const char* type : {"flat", "ivf", "hnsw"}) {
    IndexOptions o = opts(type, "l2");
    o.ef_search = 40;
    VectorIndex ix = VectorIndex::build(d.file("e.st"), o);
    EXPECT_EQ(ix.checkpoint(), "/some/run.pt");
    EXPECT_EQ(ix.features(), "encoder");
    EXPECT_EQ(ix.modality(), "image");
    ix.save(d.file("ix"));
    ix.save(d.file("ix"));  // replacing an existing folder
    VectorIndex back = VectorIndex::load(d.file("ix"));
    EXPECT_EQ(back.type(), type);
    EXPECT_EQ(back.metric(), "l2");
    EXPECT_EQ(back.size(), 800);
    EXPECT_EQ(back.dim(), 12);
    EXPECT_EQ(back.checkpoint(), "/some/run.pt");
    EXPECT_EQ(back.meta().at("count"), "800");
    if (std::string(type) == "ivf") EXPECT_EQ(back.meta().at("nprobe"), ix.meta().at("nprobe"));
    if (std::string(type) == "hnsw") EXPECT_EQ(back.meta().at("ef_search"), "40");
    EXPECT_TRUE(torch::equal(back.vector_of("item/17"), x[17]));
    auto q = x.narrow(0, 100, 30);
    auto a = ix.search_rows(q, 5), b = back.search_rows(q, 5);
    EXPECT_TRUE(torch::equal(a.second, b.second)) << type;
    EXPECT_TRUE(torch::allclose(a.first, b.first));
    auto hits = back.search(q.narrow(0, 0, 1), 1)[0];
    EXPECT_EQ(hits[0].id, "item/100");
    EXPECT_EQ(hits[0].label, 100 % 3);
  }
  EXPECT_FALSE(path_exists(d.file("ix.tmp")));
}

TEST(VectorIndex, ConcurrentSearchesAgreeWithSequentialOnes) {
  auto x = mixture(2000, 16, 10, 5);
  for (const char* type : {"flat", "ivf", "hnsw"}) {
    VectorIndex ix = VectorIndex::build(x, {}, {}, opts(type, "cosine"));
    auto q = mixture(64, 16, 10, 6);
    auto want = ix.search_rows(q, 10).second;
    std::vector<torch::Tensor> got(4);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        for (int rep = 0; rep < 5; ++rep) got[t] = ix.search_rows(q, 10).second;
      });
    for (auto& t : threads) t.join();
    for (const auto& g : got) EXPECT_TRUE(torch::equal(g, want)) << type;
  }
}

TEST(VectorIndex, BadInputsGiveClearErrors) {
  TempDir d;
  auto x = mixture(300, 16, 4, 7);
  VectorIndex ix = VectorIndex::build(x, {}, {}, opts("hnsw", "cosine"));
  // Dimension mismatch names both.
  try {
    ix.search(torch::randn({2, 8}), 3);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("dimension 8"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("dimension 16"), std::string::npos) << e.what();
  }
  contra::testing::expect_data_error([&] { ix.vector_of("nope"); }, "'nope'");
  EXPECT_EQ(ix.row_of("nope"), -1);
  EXPECT_THROW(VectorIndex::build(x, {}, {}, opts("annoy", "cosine")), ConfigError);
  EXPECT_THROW(VectorIndex::build(x, {}, {}, opts("flat", "dot")), ConfigError);
  EXPECT_THROW(VectorIndex::build(x, {}, {"a", "a"}, opts("flat", "l2")), DataError);
  auto nan = x.clone();
  nan[3][2] = std::nanf("");
  EXPECT_THROW(VectorIndex::build(nan, {}, {}, opts("flat", "l2")), DataError);
  contra::testing::expect_data_error([&] { VectorIndex::build(d.file("none.st"), {}); }, "none.st");

  ix.save(d.file("ix"));
  contra::testing::expect_data_error([&] { VectorIndex::load(d.file("missing")); }, "missing");
  // Truncated FAISS file.
  const std::string faiss_file = d.file("ix/index.faiss");
  std::string bytes = read_file(faiss_file);
  write_file_atomic(faiss_file, bytes.substr(0, bytes.size() / 2));
  contra::testing::expect_data_error([&] { VectorIndex::load(d.file("ix")); }, "index.faiss");
  write_file_atomic(faiss_file, bytes);
  EXPECT_NO_THROW(VectorIndex::load(d.file("ix")));
  // Bad meta.json.
  const std::string meta = read_file(d.file("ix/meta.json"));
  write_file_atomic(d.file("ix/meta.json"), "{ not json");
  contra::testing::expect_data_error([&] { VectorIndex::load(d.file("ix")); }, "meta.json");
  std::string wrong_dim = meta;
  wrong_dim.replace(wrong_dim.find("\"dim\": 16"), 9, "\"dim\": 17");
  write_file_atomic(d.file("ix/meta.json"), wrong_dim);
  contra::testing::expect_data_error([&] { VectorIndex::load(d.file("ix")); }, "dimension");
  write_file_atomic(d.file("ix/meta.json"), meta);
  // Truncated vectors file.
  const std::string vec = read_file(d.file("ix/vectors.safetensors"));
  write_file_atomic(d.file("ix/vectors.safetensors"), vec.substr(0, vec.size() - 100));
  contra::testing::expect_data_error([&] { VectorIndex::load(d.file("ix")); },
                                     "vectors.safetensors");
  remove_all(d.file("ix/vectors.safetensors"));
  contra::testing::expect_data_error([&] { VectorIndex::load(d.file("ix")); },
                                     "vectors.safetensors");
}

}  // namespace
}  // namespace contra::index
