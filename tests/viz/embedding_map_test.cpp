#include "contra/viz/embedding_map.h"

#include <chrono>
#include <filesystem>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/viz/projector.h"
#include "tests/support/support.h"

namespace contra::viz {
namespace {

using contra::testing::TempDir;

// k Gaussian blobs in d dimensions, far apart: (points, labels).
std::pair<torch::Tensor, torch::Tensor> blobs(std::int64_t per, std::int64_t k, std::int64_t d,
                                              double spread = 20) {
  torch::manual_seed(3);
  std::vector<torch::Tensor> xs, ys;
  for (std::int64_t c = 0; c < k; ++c) {
    torch::Tensor centre = torch::randn({1, d}) * spread;
    xs.push_back(centre + torch::randn({per, d}));
    ys.push_back(torch::full({per}, c, torch::kLong));
  }
  return {torch::cat(xs), torch::cat(ys)};
}

TEST(Pca, MatchesTheSvdOfTheCentredData) {
  torch::manual_seed(0);
  // Anisotropic data: variances 25, 4, 1, 0.25 along a random rotation.
  torch::Tensor q = std::get<0>(torch::linalg::qr(torch::randn({4, 4}, torch::kDouble)));
  torch::Tensor x =
      torch::randn({500, 4}, torch::kDouble) * torch::tensor({5.0, 2.0, 1.0, 0.5}, torch::kDouble) +
      3.0;
  x = x.matmul(q);
  torch::Tensor y = pca(x, 2).to(torch::kDouble);
  ASSERT_EQ(y.sizes(), (std::vector<std::int64_t>{500, 2}));
  torch::Tensor xc = x - x.mean(0, true);
  auto [u, s, vh] = torch::linalg::svd(xc, false, c10::nullopt);
  // Same projections up to each component's sign; variances = s² / (N - 1), in decreasing order.
  for (int k = 0; k < 2; ++k) {
    torch::Tensor expected = xc.matmul(vh[k]);
    const double sign = (y.select(1, k) * expected).sum().item<double>() > 0 ? 1 : -1;
    EXPECT_LT((y.select(1, k) - sign * expected).abs().max().item<double>(), 1e-3);
  }
  EXPECT_NEAR(y.select(1, 0).var().item<double>(), (s[0] * s[0] / 499).item<double>(), 1e-3);
  EXPECT_GT(y.select(1, 0).var().item<double>(), y.select(1, 1).var().item<double>());
  EXPECT_NEAR(y.select(1, 0).var().item<double>(), 25, 4);
  EXPECT_NEAR(y.select(1, 1).var().item<double>(), 4, 1);
  // Uncorrelated components, centred.
  EXPECT_NEAR((y.select(1, 0) * y.select(1, 1)).mean().item<double>(), 0, 1e-3);
  EXPECT_LT(y.mean(0).abs().max().item<double>(), 1e-4);
  EXPECT_THROW(pca(x, 5), ConfigError);
}

TEST(Tsne, SeparatesWellSeparatedClusters) {
  auto [x, labels] = blobs(100, 3, 20);
  TsneOptions o;
  o.seed = 7;
  const auto start = std::chrono::steady_clock::now();
  torch::Tensor y = tsne(x, o);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(y.sizes(), (std::vector<std::int64_t>{300, 2}));
  EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
  EXPECT_GE(knn_accuracy(y, labels, 5), 0.99);
  // The clusters are compact relative to their distances: mean within-cluster distance is much
  // smaller than the distance between cluster centres.
  std::vector<torch::Tensor> centres;
  double within = 0;
  for (int c = 0; c < 3; ++c) {
    torch::Tensor members = y.index({labels.eq(c)});
    centres.push_back(members.mean(0));
    within += (members - centres.back()).norm(2, 1).mean().item<double>() / 3;
  }
  for (int a = 0; a < 3; ++a) {
    for (int b = a + 1; b < 3; ++b)
      EXPECT_GT((centres[a] - centres[b]).norm().item<double>(), 3 * within);
  }
  // Seeded: the same map again.
  EXPECT_TRUE(torch::equal(tsne(x, o), y));
  EXPECT_LT(seconds, 60);
}

TEST(Tsne, OverlappingClustersAreNotMagicallySeparated) {
  // The kNN check is meaningful: labels unrelated to the data give chance-level accuracy.
  torch::manual_seed(1);
  torch::Tensor x = torch::randn({240, 10});
  torch::Tensor labels = torch::arange(240, torch::kLong) % 3;
  TsneOptions o;
  o.iterations = 300;
  EXPECT_LT(knn_accuracy(tsne(x, o), labels, 5), 0.6);
}

TEST(Tsne, BadOptionsNameTheProblem) {
  torch::Tensor x = torch::randn({20, 3});
  TsneOptions o;  // perplexity 30 > 19
  EXPECT_THROW(tsne(x, o), ConfigError);
  o.perplexity = 5;
  o.iterations = 0;
  EXPECT_THROW(tsne(x, o), ConfigError);
  o.iterations = 10;
  EXPECT_EQ(tsne(x, o).size(0), 20);
  EXPECT_THROW(tsne(torch::full({20, 3}, NAN), o), DataError);
}

TEST(Projector, FilesAreWellFormedAndReadBack) {
  TempDir dir;
  EmbeddingSample s;
  s.points = torch::randn({37, 5});
  s.columns = {"label", "index"};
  for (int i = 0; i < 37; ++i) s.rows.push_back({i % 2 ? "odd\tone" : "even", std::to_string(i)});
  write_projector(dir.file("p"), s);
  // tensors.tsv: 37 lines of 5 tab-separated numbers; metadata.tsv: header + 37 rows.
  std::vector<std::string> lines;
  {
    std::stringstream in(read_file(dir.file("p/tensors.tsv")));
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
  }
  ASSERT_EQ(lines.size(), 37u);
  for (const auto& line : lines) EXPECT_EQ(std::count(line.begin(), line.end(), '\t'), 4);
  const std::string meta = read_file(dir.file("p/metadata.tsv"));
  EXPECT_EQ(std::count(meta.begin(), meta.end(), '\n'), 38);
  EXPECT_EQ(meta.substr(0, 12), "label\tindex\n");
  EXPECT_NE(meta.find("odd one\t1\n"), std::string::npos);  // a tab in a value cannot split it
  EXPECT_EQ(read_file(dir.file("p/projector_config.pbtxt")),
            "embeddings {\n  tensor_path: \"tensors.tsv\"\n  metadata_path: \"metadata.tsv\"\n}\n");
  auto back = read_projector(dir.file("p"));
  EXPECT_TRUE(torch::allclose(back.points, s.points, 1e-5, 1e-5));
  EXPECT_EQ(back.columns, s.columns);
  EXPECT_EQ(back.rows[2], (std::vector<std::string>{"even", "2"}));
  // An event file marks the folder as a TensorBoard run (so the projector plugin finds it).
  EXPECT_EQ(std::count_if(std::filesystem::directory_iterator(dir.file("p")),
                          std::filesystem::directory_iterator(),
                          [](const auto& e) {
                            return e.path().filename().string().find("tfevents") !=
                                   std::string::npos;
                          }),
            1);
  // Bad inputs.
  s.rows.pop_back();
  contra::testing::expect_data_error([&] { write_projector(dir.file("q"), s); }, "36 metadata");
  contra::testing::write_bytes(dir.file("p/metadata.tsv"), "label\tindex\nx\t1\n");
  contra::testing::expect_data_error([&] { read_projector(dir.file("p")); }, "metadata.tsv");
  contra::testing::write_bytes(dir.file("p/tensors.tsv"), "1\t2\n3\n");
  contra::testing::expect_data_error([&] { read_projector(dir.file("p")); }, "line 2");
}

TEST(Projector, SampleIndicesAreSeededDistinctAndSorted) {
  auto a = sample_indices(10000, 2000, 5);
  ASSERT_EQ(a.size(), 2000u);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::set<std::int64_t>(a.begin(), a.end()).size(), 2000u);
  EXPECT_GE(a.front(), 0);
  EXPECT_LT(a.back(), 10000);
  EXPECT_EQ(sample_indices(10000, 2000, 5), a);
  EXPECT_NE(sample_indices(10000, 2000, 6), a);
  EXPECT_EQ(sample_indices(3, 2000, 5), (std::vector<std::int64_t>{0, 1, 2}));
  // Spread over the whole range, not the first items.
  EXPECT_GT(a.back(), 9000);
}

TEST(Projector, ImageSampleFromAFeatureFunction) {
  TempDir dir;
  data::ImageDataset test;
  test.images = torch::randint(0, 255, {50, 1, 4, 4}, torch::kLong).to(torch::kUInt8);
  test.labels = torch::arange(50, torch::kLong) % 3;
  test.classes = {"a", "b", "c"};
  data::ChannelStats stats;
  stats.mean = {0.5};
  stats.std = {0.25};
  // Feature = the first 3 normalised pixels; checks the sample keeps image ↔ label pairing.
  eval::ImageFeatureFn fn = [](const torch::Tensor& x) { return x.flatten(1).narrow(1, 0, 3); };
  EXPECT_EQ(write_image_projector(dir.path(), fn, test, stats, torch::kCPU, 20, 1), 20);
  auto s = read_projector(dir.path());
  ASSERT_EQ(s.points.size(0), 20);
  EXPECT_EQ(s.columns, (std::vector<std::string>{"label", "index"}));
  for (std::int64_t i = 0; i < 20; ++i) {
    const std::int64_t index = std::stoll(s.rows[static_cast<std::size_t>(i)][1]);
    EXPECT_EQ(s.rows[static_cast<std::size_t>(i)][0],
              test.classes[static_cast<std::size_t>(index % 3)]);
    torch::Tensor expected =
        (test.images[index].flatten().narrow(0, 0, 3).to(torch::kFloat) / 255.0 - 0.5) / 0.25;
    EXPECT_TRUE(torch::allclose(s.points[i], expected, 1e-4, 1e-4)) << i;
  }
}

}  // namespace
}  // namespace contra::viz
