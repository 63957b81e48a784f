#include "contra/loss/soft_nearest_neighbors.h"

#include <cmath>
#include <limits>

#include "tests/loss/loss_testing.h"

namespace contra::loss {
namespace {

using namespace contra::testing;

class SoftNearestNeighborsTest : public SeededTest {};

double squared_distance(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).pow(2).sum().item<double>();
}

// Frosst et al. eq. 1, loops over i, j, k on a distance table; anchors without a same-class
// neighbour skipped.
double naive_snn_table(const std::vector<std::vector<double>>& dist, const torch::Tensor& labels,
                       double t) {
  const int64_t b = labels.size(0);
  double total = 0;
  int64_t count = 0;
  for (int64_t i = 0; i < b; ++i) {
    // Distances relative to the nearest neighbour: the ratio is unchanged and e^{·} cannot
    // underflow to 0/0 at small T.
    double nearest = std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < b; ++j) {
      if (j != i) nearest = std::min(nearest, dist[i][j]);
    }
    double same = 0, all = 0;
    bool has = false;
    for (int64_t j = 0; j < b; ++j) {
      if (j == i) continue;
      const double e = std::exp(-(dist[i][j] - nearest) / t);
      all += e;
      if (labels[j].item<int64_t>() == labels[i].item<int64_t>()) {
        same += e;
        has = true;
      }
    }
    if (!has) continue;
    total += -std::log(same / all);
    ++count;
  }
  return total / static_cast<double>(count);
}

std::vector<std::vector<double>> distance_table(
    const torch::Tensor& x,
    const std::function<double(const torch::Tensor&, const torch::Tensor&)>& d) {
  std::vector<std::vector<double>> table(x.size(0), std::vector<double>(x.size(0)));
  for (int64_t i = 0; i < x.size(0); ++i) {
    for (int64_t j = 0; j < x.size(0); ++j) table[i][j] = d(x[i], x[j]);
  }
  return table;
}

double naive_snn(const torch::Tensor& x, const torch::Tensor& labels, double t,
                 const std::function<double(const torch::Tensor&, const torch::Tensor&)>& d) {
  return naive_snn_table(distance_table(x, d), labels, t);
}

// (a) scripts/loss_reference.py → tests/data/loss/soft_nearest_neighbors.json (the optimised case
// against the script's own dense search).
TEST_F(SoftNearestNeighborsTest, MatchesPythonReference) {
  for (const auto& c : load_reference("soft_nearest_neighbors")) {
    auto options = c.options<SoftNearestNeighborsOptions>();
    expect_matches_reference(
        c,
        [&](const TensorMap& in) {
          return functional::soft_nearest_neighbors(in.at("x"), in.at("labels"), options);
        },
        options.optimize_temperature() ? 1e-7 : 1e-9);
  }
}

// (b) every distance, including a custom one (L1).
TEST_F(SoftNearestNeighborsTest, MatchesNaiveLoop) {
  torch::Tensor x = randn_double({9, 3});
  torch::Tensor labels = torch::tensor({0, 1, 2, 0, 1, 2, 0, 1, 3});
  auto sq = [](const torch::Tensor& a, const torch::Tensor& b) { return squared_distance(a, b); };
  auto eu = [](const torch::Tensor& a, const torch::Tensor& b) {
    return std::sqrt(squared_distance(a, b));
  };
  auto co = [](const torch::Tensor& a, const torch::Tensor& b) {
    return 1 - (a.dot(b) / (a.norm() * b.norm())).item<double>();
  };
  auto l1 = [](const torch::Tensor& a, const torch::Tensor& b) {
    return (a - b).abs().sum().item<double>();
  };
  for (double t : {0.05, 1.0, 20.0}) {
    auto opts = SoftNearestNeighborsOptions().temperature(t);
    EXPECT_NEAR(functional::soft_nearest_neighbors(x, labels, opts).item<double>(),
                naive_snn(x, labels, t, sq), 1e-11);
    EXPECT_NEAR(functional::soft_nearest_neighbors(x, labels, opts.distance(Distance::kEuclidean))
                    .item<double>(),
                naive_snn(x, labels, t, eu), 1e-11);
    EXPECT_NEAR(functional::soft_nearest_neighbors(x, labels, opts.distance(Distance::kCosine))
                    .item<double>(),
                naive_snn(x, labels, t, co), 1e-11);
    auto custom = SoftNearestNeighborsOptions().temperature(t).distance_fn(
        [](const torch::Tensor& a, const torch::Tensor& b) { return torch::cdist(a, b, 1.0); });
    EXPECT_NEAR(functional::soft_nearest_neighbors(x, labels, custom).item<double>(),
                naive_snn(x, labels, t, l1), 1e-11);
  }
}

// The optimised temperature is the minimum: no temperature on a fine grid does better, and the
// loss there equals the naive loop at the returned T.
TEST_F(SoftNearestNeighborsTest, OptimisedTemperatureIsTheMinimum) {
  torch::Tensor x = randn_double({8, 2});
  torch::Tensor labels = torch::tensor({0, 0, 1, 1, 2, 2, 0, 1});
  auto sq = [](const torch::Tensor& a, const torch::Tensor& b) { return squared_distance(a, b); };
  torch::Tensor d = pairwise_distance(x, x, Distance::kSquaredEuclidean);
  const double best_t = functional::soft_nearest_neighbors_best_temperature(d, labels);
  const double best = functional::soft_nearest_neighbors(
                          x, labels, SoftNearestNeighborsOptions().optimize_temperature(true))
                          .item<double>();
  auto table = distance_table(x, sq);
  EXPECT_NEAR(best, naive_snn_table(table, labels, best_t), 1e-11);
  for (double log_t = -8; log_t <= 8; log_t += 0.02) {
    EXPECT_LE(best, naive_snn_table(table, labels, std::exp(log_t)) + 1e-12)
        << "T = " << std::exp(log_t);
  }
}

// (c) Identical embeddings: every neighbour equally likely → −log((n_c − 1)/(b − 1)).
TEST_F(SoftNearestNeighborsTest, AnalyticCases) {
  torch::Tensor x = torch::ones({6, 3}, torch::kDouble);
  torch::Tensor labels = torch::tensor({0, 0, 1, 1, 1, 2});  // 5 anchors have a neighbour
  const double expected = (2 * -std::log(1.0 / 5) + 3 * -std::log(2.0 / 5)) / 5;
  EXPECT_NEAR(functional::soft_nearest_neighbors(x, labels).item<double>(), expected, 1e-12);
  // Two tight, far-apart classes: the loss vanishes as T → 0 and the optimum reaches ~0.
  torch::Tensor sep =
      torch::tensor({{0.0, 0.0}, {0.1, 0.0}, {10.0, 0.0}, {10.1, 0.0}}, torch::kDouble);
  torch::Tensor y = torch::tensor({0, 0, 1, 1});
  EXPECT_LT(functional::soft_nearest_neighbors(
                sep, y, SoftNearestNeighborsOptions().optimize_temperature(true))
                .item<double>(),
            1e-12);
}

// (d) fixed T, every distance, and the optimised T (envelope theorem: FD of min_T ℓ).
TEST_F(SoftNearestNeighborsTest, GradientMatchesFiniteDifferences) {
  torch::Tensor labels = torch::tensor({0, 1, 2, 0, 1, 2, 0});
  for (auto d : {Distance::kSquaredEuclidean, Distance::kEuclidean, Distance::kCosine}) {
    expect_gradcheck(
        [&](const std::vector<torch::Tensor>& in) {
          return functional::soft_nearest_neighbors(
              in[0], labels, SoftNearestNeighborsOptions().temperature(0.7).distance(d));
        },
        {randn_double({7, 3})});
  }
  expect_gradcheck(
      [&](const std::vector<torch::Tensor>& in) {
        return functional::soft_nearest_neighbors(
            in[0], labels.narrow(0, 0, 6),
            SoftNearestNeighborsOptions().optimize_temperature(true));
      },
      {randn_double({6, 2})}, 1e-6, 1e-5, 1e-4);
}

// (e)
TEST_F(SoftNearestNeighborsTest, RejectsInvalidOptionsAndInputs) {
  torch::Tensor x = torch::randn({4, 3});
  torch::Tensor labels = torch::tensor({0, 0, 1, 1});
  expect_throws_with<ConfigError>(
      [&] {
        functional::soft_nearest_neighbors(x, labels,
                                           SoftNearestNeighborsOptions().temperature(-1));
      },
      "got -1");
  expect_throws_with<ConfigError>(
      [&] { SoftNearestNeighbors(SoftNearestNeighborsOptions().temperature(0)); }, "got 0");
  expect_throws_with<DataError>(
      [&] {
        functional::soft_nearest_neighbors(x, torch::tensor({0, 1, 2, 3}));
      },
      "4 classes");
  expect_throws_with<c10::Error>(
      [&] {
        functional::soft_nearest_neighbors(x, torch::tensor({0, 1}));
      },
      "[2]");
  expect_throws_with<c10::Error>(
      [&] {
        functional::soft_nearest_neighbors(torch::randn({0, 3}), torch::zeros({0}, torch::kLong));
      },
      "empty batch");
  auto bad_fn = SoftNearestNeighborsOptions().distance_fn(
      [](const torch::Tensor& a, const torch::Tensor&) { return a; });
  expect_throws_with<c10::Error>([&] { functional::soft_nearest_neighbors(x, labels, bad_fn); },
                                 "[4, 3]");
}

TEST_F(SoftNearestNeighborsTest, FiniteForExtremeInputs) {
  torch::Tensor labels = torch::tensor({0, 0, 1, 1, 2, 2});
  for (auto d : {Distance::kSquaredEuclidean, Distance::kEuclidean, Distance::kCosine}) {
    for (bool optimize : {false, true}) {
      auto opts = SoftNearestNeighborsOptions().temperature(1e-4).distance(d).optimize_temperature(
          optimize);
      auto fn = [&](const std::vector<torch::Tensor>& in) {
        return functional::soft_nearest_neighbors(in[0], labels, opts);
      };
      expect_finite(fn, {torch::randn({6, 3})}, "small temperature");
      expect_finite(fn, {torch::ones({6, 3})}, "identical embeddings");
      expect_finite(fn, {torch::zeros({6, 3})}, "zero vectors");
    }
  }
}

TEST_F(SoftNearestNeighborsTest, ModuleMatchesFunctional) {
  torch::Tensor x = torch::randn({6, 3});
  torch::Tensor labels = torch::tensor({0, 0, 1, 1, 2, 2});
  auto opts = SoftNearestNeighborsOptions().temperature(0.5).distance(Distance::kCosine);
  SoftNearestNeighbors module(opts);
  EXPECT_TRUE(torch::equal(module(x, labels), functional::soft_nearest_neighbors(x, labels, opts)));
}

}  // namespace
}  // namespace contra::loss
