#include "contra/eval/knn.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "contra/core/error.h"
#include "tests/support/support.h"

namespace contra::eval {
namespace {

using contra::testing::SeededTest;
using ::testing::HasSubstr;
class KnnTest : public SeededTest {};

/// Brute force in double, independent of FAISS: cosine similarities by mm, the k best by topk, the
/// votes by scatter_add, ties by argmax's first maximum (lowest class id). Returns the (M, classes)
/// vote table.
torch::Tensor reference_votes(const torch::Tensor& train_x, const torch::Tensor& train_y,
                              const torch::Tensor& test_x, int64_t k, double temperature,
                              bool uniform, int64_t classes) {
  namespace F = torch::nn::functional;
  auto a = F::normalize(train_x.to(torch::kDouble), F::NormalizeFuncOptions().dim(1));
  auto b = F::normalize(test_x.to(torch::kDouble), F::NormalizeFuncOptions().dim(1));
  auto [sims, idx] = b.mm(a.t()).topk(k, 1);  // (M, k)
  auto weights = uniform ? torch::ones_like(sims) : (sims / temperature).exp();
  return torch::zeros({test_x.size(0), classes}, torch::kDouble)
      .scatter_add_(1, train_y.index({idx}), weights);
}

/// Gaussian clusters around well separated class means.
std::pair<torch::Tensor, torch::Tensor> clusters(int64_t n, int64_t classes, int64_t dim) {
  auto y = torch::randint(0, classes, {n}, torch::kLong);
  auto centres = torch::randn({classes, dim}) * 4;
  return {centres.index_select(0, y) + 0.3 * torch::randn({n, dim}), y};
}

/// Expects `f` to throw E with a message containing `needle` (the key or tensor at fault).
template <class E>
void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning '" << needle << "'";
  } catch (const E& e) {
    EXPECT_THAT(e.what(), HasSubstr(needle));
  }
}

TEST_F(KnnTest, SeparableClustersArePerfectlyClassified) {
  auto [x, y] = clusters(800, 8, 24);
  // Default options (k = 200, exp weighting, T = 0.07); a float64 test set is converted.
  auto r = knn_classify(x.narrow(0, 0, 500), y.narrow(0, 0, 500),
                        x.narrow(0, 500, 300).to(torch::kDouble), y.narrow(0, 500, 300));
  EXPECT_EQ(r.top1, 1.0);
  EXPECT_EQ(r.top5, 1.0);
  EXPECT_EQ(r.k, 200);
  EXPECT_EQ(r.classes, 8);
  EXPECT_EQ(r.dim, 24);
  EXPECT_EQ(r.train_size, 500);
  EXPECT_EQ(r.test_size, 300);
  EXPECT_GE(r.seconds, 0.0);
  auto uniform = knn_classify(x.narrow(0, 0, 500), y.narrow(0, 0, 500), x.narrow(0, 500, 300),
                              y.narrow(0, 500, 300), KnnOptions().k(10).weighting("uniform"));
  EXPECT_EQ(uniform.top1, 1.0);
  // Labels scrambled on the test side: accuracy falls far from 1 (the metric can fail).
  auto wrong = knn_classify(x.narrow(0, 0, 500), y.narrow(0, 0, 500), x.narrow(0, 500, 300),
                            (y.narrow(0, 500, 300) + 1) % 8);
  EXPECT_EQ(wrong.top1, 0.0);
}

TEST_F(KnnTest, ExponentialAndUniformVotesDisagreeOnAHandExample) {
  // Query q = (1, 0). Training set (already unit length), cosine with q in brackets:
  //   a = (1, 0)      class 0   [s = 1.0]
  //   b = (0.8, 0.6)  class 1   [s = 0.8]
  //   c = (0.8, -0.6) class 1   [s = 0.8]
  //   d = (-1, 0)     class 2   [s = -1.0]  (not among the k = 3 nearest)
  // uniform:           class 0: 1 vote, class 1: 2 votes                     → class 1
  // exp, T = 0.07:     class 0: e^(1/0.07) = e^14.286 ≈ 1.60e6
  //                    class 1: 2 e^(0.8/0.07) = 2 e^11.429 ≈ 1.85e5          → class 0
  // exp, T = 1:        class 0: e^1 ≈ 2.72, class 1: 2 e^0.8 ≈ 4.45          → class 1
  // (the crossover is at e^(0.2/T) = 2, T = 0.2/ln 2 ≈ 0.289).
  auto train_x = torch::tensor({1.0, 0.0, 0.8, 0.6, 0.8, -0.6, -1.0, 0.0}).view({4, 2});
  auto train_y = torch::tensor({0, 1, 1, 2}, torch::kLong);
  auto q = torch::tensor({3.0, 0.0}).view({1, 2});  // length does not matter
  auto predict = [&](const KnnOptions& o) {
    return knn_predict(train_x, train_y, q, o)[0].item<int64_t>();
  };
  EXPECT_EQ(predict(KnnOptions().k(3).weighting("uniform")), 1);
  EXPECT_EQ(predict(KnnOptions().k(3)), 0);
  EXPECT_EQ(predict(KnnOptions().k(3).temperature(1.0)), 1);
  EXPECT_EQ(predict(KnnOptions().k(3).temperature(0.25)), 0);
  EXPECT_EQ(predict(KnnOptions().k(3).temperature(0.35)), 1);
  // k = 1: the single nearest neighbour decides, whatever the weighting.
  EXPECT_EQ(predict(KnnOptions().k(1).weighting("uniform")), 0);
  // A tiny temperature must not overflow: e^(1/0.001) is far beyond double.
  EXPECT_EQ(predict(KnnOptions().k(3).temperature(1e-3)), 0);
  // Uniform tie (k = 2 over a and b: one vote each) → lowest class id.
  EXPECT_EQ(predict(KnnOptions().k(2).weighting("uniform")), 0);
  auto swapped = torch::tensor({1, 0, 0, 2}, torch::kLong);
  EXPECT_EQ(
      knn_predict(train_x, swapped, q, KnnOptions().k(2).weighting("uniform"))[0].item<int64_t>(),
      0);
  // Top-5 is not defined with 3 classes.
  auto r = knn_classify(train_x, train_y, q, torch::tensor({0}, torch::kLong), KnnOptions().k(3));
  EXPECT_EQ(r.top1, 1.0);
  EXPECT_TRUE(std::isnan(r.top5));
}

TEST_F(KnnTest, AgreesWithBruteForceTorch) {
  const int64_t N = 600, M = 333, D = 16, classes = 10;
  auto train_x = torch::randn({N, D});
  auto train_y = torch::randint(0, classes, {N}, torch::kLong);
  auto test_x = torch::randn({M, D}) * 3 + 0.5;
  auto test_y = torch::randint(0, classes, {M}, torch::kLong);
  for (bool uniform : {false, true}) {
    for (int64_t k : {1, 7, 50}) {
      const double temperature = 0.1;
      auto votes = reference_votes(train_x, train_y, test_x, k, temperature, uniform, classes);
      auto expected = votes.argmax(1);
      auto options =
          KnnOptions().k(k).temperature(temperature).weighting(uniform ? "uniform" : "exp");
      // chunk 7 (FAISS's per-query path, a short last chunk) and 1024 (one BLAS search).
      for (int64_t chunk : {7, 1024}) {
        auto predicted = knn_predict(train_x, train_y, test_x, options.chunk(chunk));
        ASSERT_EQ(predicted.sizes(), expected.sizes());
        EXPECT_TRUE(predicted.equal(expected))
            << "k " << k << " uniform " << uniform << " chunk " << chunk << ": "
            << (predicted != expected).sum().item<int64_t>() << " of " << M << " differ";
      }
      // Accuracies from the same table; top-5 rank with ties broken towards lower class ids.
      auto r = knn_classify(train_x, train_y, test_x, test_y, options);
      const double top1 = (expected == test_y).to(torch::kDouble).mean().item<double>();
      auto own = votes.gather(1, test_y.unsqueeze(1));  // (M, 1)
      auto ids = torch::arange(classes, torch::kLong).unsqueeze(0);
      auto rank = (votes > own).sum(1) + ((votes == own) & (ids < test_y.unsqueeze(1))).sum(1);
      const double top5 = (rank < 5).to(torch::kDouble).mean().item<double>();
      EXPECT_DOUBLE_EQ(r.top1, top1) << "k " << k << " uniform " << uniform;
      EXPECT_DOUBLE_EQ(r.top5, top5) << "k " << k << " uniform " << uniform;
      EXPECT_GT(r.top5, r.top1);
      EXPECT_EQ(r.k, k);
    }
  }
}

TEST_F(KnnTest, KLargerThanTrainingSetIsClampedToN) {
  // Five training items, classes 0 0 0 1 1: with every item voting uniformly, class 0 always wins.
  auto train_x = torch::randn({5, 4});
  auto train_y = torch::tensor({1, 0, 1, 0, 0}, torch::kLong);
  auto test_x = torch::randn({20, 4});
  auto test_y = torch::zeros({20}, torch::kLong);
  auto r = knn_classify(train_x, train_y, test_x, test_y, KnnOptions().weighting("uniform"));
  EXPECT_EQ(r.k, 5);
  EXPECT_EQ(r.top1, 1.0);
  auto big = knn_predict(train_x, train_y, test_x, KnnOptions().k(1000));
  auto exact = knn_predict(train_x, train_y, test_x, KnnOptions().k(5));
  EXPECT_TRUE(big.equal(exact));
  EXPECT_TRUE(big.equal(reference_votes(train_x, train_y, test_x, 5, 0.07, false, 2).argmax(1)));
}

TEST_F(KnnTest, BadOptionsAndInputsThrowNamingTheCulprit) {
  auto x = torch::randn({10, 3});
  auto y = torch::randint(0, 2, {10}, torch::kLong);
  auto run = [&](const KnnOptions& o) { return [&, o] { knn_classify(x, y, x, y, o); }; };
  expect_error<ConfigError>(run(KnnOptions().k(0)), "k must be >= 1");
  expect_error<ConfigError>(run(KnnOptions().temperature(0)), "temperature");
  expect_error<ConfigError>(run(KnnOptions().temperature(-0.1)), "temperature");
  expect_error<ConfigError>(run(KnnOptions().weighting("cosine")), "weighting");
  expect_error<ConfigError>(run(KnnOptions().chunk(0)), "chunk");
  expect_error<ConfigError>([&] { knn_predict(x, y, x, KnnOptions().k(-3)); }, "k must be >= 1");

  expect_error<DataError>([&] { knn_classify(x, y.narrow(0, 0, 5), x, y); }, "train_y");
  expect_error<DataError>([&] { knn_classify(x, y, x, y.narrow(0, 0, 5)); }, "test_y");
  expect_error<DataError>(
      [&] {
        knn_classify(x, y, torch::randn({10, 4}), y);
      },
      "train_x and test_x feature sizes differ (3 vs 4)");
  expect_error<DataError>(
      [&] {
        knn_classify(torch::randn({0, 3}), y.narrow(0, 0, 0), x, y);
      },
      "train_x");
  expect_error<DataError>(
      [&] {
        knn_classify(x, y, torch::randn({0, 3}), y.narrow(0, 0, 0));
      },
      "test_x");
  expect_error<DataError>([&] { knn_classify(torch::randn({10}), y, x, y); }, "train_x");
  expect_error<DataError>([&] { knn_classify(x, y - 5, x, y); }, "train_y labels must be >= 0");
  expect_error<DataError>([&] { knn_classify(x, y, x, y - 5); }, "test_y labels must be >= 0");
  expect_error<DataError>([&] { knn_classify(x, y.to(torch::kFloat), x, y); }, "train_y");
  expect_error<DataError>([&] { knn_classify(x.to(torch::kLong), y, x, y); }, "train_x");
  auto bad = x.clone();
  bad[3][1] = std::nan("");
  expect_error<DataError>([&] { knn_classify(bad, y, x, y); }, "train_x contains NaN");
  bad[3][1] = std::numeric_limits<float>::infinity();
  expect_error<DataError>([&] { knn_predict(x, y, bad); }, "test_x contains NaN or Inf");
}

}  // namespace
}  // namespace contra::eval
