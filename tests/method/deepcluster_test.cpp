// DeepCluster: k-means assignments are the brute-force nearest centroids and no cluster stays empty
// (the paper's split rule), NMI, the per-phase clustering with its uniform-over-clusters order and
// fresh top layer, a resumed phase keeping its labels, 2-step smoke, the loss falling when one
// batch is overfitted, and the clustering state surviving a checkpoint.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/method/deepcluster.h"
#include "tests/method/method_fixtures.h"
#include "tests/support/support.h"

namespace contra::method {
namespace {

using contra::testing::config_error;
using contra::testing::SeededTest;
using testing::overfit;
class DeepClusterTest : public SeededTest {};

torch::Tensor brute_force_nearest(const torch::Tensor& x, const torch::Tensor& c) {
  return torch::cdist(x.to(torch::kDouble), c.to(torch::kDouble)).argmin(1);
}

// n points around `blobs` well-separated centres in d dimensions.
torch::Tensor blobs(int64_t n, int64_t blobs, int64_t d) {
  torch::Tensor centres = torch::randn({blobs, d}) * 10;
  torch::Tensor which = torch::arange(n) % blobs;
  return (centres.index_select(0, which) + torch::randn({n, d})).contiguous();
}

TEST_F(DeepClusterTest, KMeansAssignsEveryPointToItsNearestCentroidAndFillsEveryCluster) {
  torch::Tensor x = blobs(300, 6, 5);
  for (int64_t k : {6, 20}) {
    KMeansResult r = kmeans(x, k, 20, 3);
    ASSERT_EQ(r.centroids.sizes(), torch::IntArrayRef({k, 5}));
    EXPECT_TRUE(r.assignments.equal(brute_force_nearest(x, r.centroids))) << "k " << k;
    EXPECT_EQ(torch::bincount(r.assignments, {}, k).eq(0).sum().item<int64_t>(), 0) << "k " << k;
    double objective = (x - r.centroids.index_select(0, r.assignments)).pow(2).sum().item<double>();
    EXPECT_NEAR(r.objective, objective, 1e-3 * objective);
  }
  // The same seed, the same clustering.
  EXPECT_TRUE(kmeans(x, 6, 20, 3).assignments.equal(kmeans(x, 6, 20, 3).assignments));
}

TEST_F(DeepClusterTest, EmptyClustersAreSplitFromADonorAsInThePaper) {
  // Two groups of points, three centroids: the third sits far away and gets no point.
  torch::Tensor x = torch::cat({torch::randn({20, 3}), torch::randn({20, 3}) + 8});
  torch::Tensor c = torch::stack(
      {x.narrow(0, 0, 20).mean(0), x.narrow(0, 20, 20).mean(0), torch::full({3}, 100.0)});
  torch::Tensor a = brute_force_nearest(x, c);
  ASSERT_EQ(torch::bincount(a, {}, 3)[2].item<int64_t>(), 0);
  const int64_t splits = fill_empty_clusters(x, c, a, 11);
  EXPECT_GE(splits, 1);
  EXPECT_EQ(torch::bincount(a, {}, 3).eq(0).sum().item<int64_t>(), 0);
  EXPECT_TRUE(a.equal(brute_force_nearest(x, c)));
  // The new centroid is a perturbed copy of a donor's: it sits inside one of the two groups.
  EXPECT_LT(c[2].norm().item<double>(), 20);
}

TEST_F(DeepClusterTest, KMeansErrors) {
  EXPECT_NE(config_error([] {
              kmeans(torch::randn({5, 2}), 8, 5, 1);
            }).find("method.clusters"),
            std::string::npos);
  // Ten copies of two points cannot fill three clusters.
  torch::Tensor x = torch::cat({torch::zeros({10, 2}), torch::ones({10, 2})});
  try {
    kmeans(x, 3, 5, 1);
    ADD_FAILURE() << "expected a NumericalError";
  } catch (const NumericalError& e) {
    EXPECT_NE(std::string(e.what()).find("method.clusters"), std::string::npos) << e.what();
  }
}

TEST_F(DeepClusterTest, PcaWhiteningGivesIdentityCovarianceAndStaysFiniteWithoutVariance) {
  // Correlated data with very different scales.
  torch::Tensor x = torch::randn({500, 6}, torch::kDouble).mm(torch::randn({6, 6}, torch::kDouble));
  x.select(1, 0).mul_(100);
  torch::Tensor w = pca_whiten(x, 3).to(torch::kDouble);
  ASSERT_EQ(w.sizes(), torch::IntArrayRef({500, 3}));
  torch::Tensor cov = w.t().mm(w) / 499.0;
  EXPECT_TRUE(torch::allclose(cov, torch::eye(3, torch::kDouble), 0, 1e-3)) << cov;
  // The kept directions are the largest-variance ones: the first whitened component is the
  // dominant (×100) column's direction, so the two are almost perfectly correlated.
  torch::Tensor c0 = x.select(1, 0) - x.select(1, 0).mean();
  torch::Tensor w0 = w.select(1, 0);
  EXPECT_GT((c0 * w0).sum().abs().item<double>() / (c0.norm() * w0.norm()).item<double>(), 0.99);
  // Constant columns (dead ReLUs) have no variance: the result stays finite.
  torch::Tensor dead = torch::cat({torch::randn({50, 2}), torch::zeros({50, 4})}, 1);
  EXPECT_TRUE(torch::isfinite(pca_whiten(dead, 4)).all().item<bool>());
}

TEST_F(DeepClusterTest, NormalizedMutualInformation) {
  torch::Tensor a = torch::tensor({0, 0, 1, 1, 2, 2}, torch::kLong);
  EXPECT_NEAR(normalized_mutual_information(a, a), 1.0, 1e-12);
  EXPECT_NEAR(normalized_mutual_information(a, torch::tensor({5, 5, 3, 3, 9, 9}, torch::kLong)),
              1.0, 1e-12);  // a relabelling
  // Independent: every pair of labels equally often.
  torch::Tensor x = torch::tensor({0, 0, 1, 1}, torch::kLong), y = torch::tensor({0, 1, 0, 1});
  EXPECT_NEAR(normalized_mutual_information(x, y), 0.0, 1e-12);
  // By hand: x = {0,0,1,1}, b = {0,0,0,1}: H(x) = ln 2, H(b) = −(¾ ln ¾ + ¼ ln ¼), and I from
  // the joint counts (0,0): 2, (1,0): 1, (1,1): 1.
  torch::Tensor b = torch::tensor({0, 0, 0, 1}, torch::kLong);
  const double ha = std::log(2.0), hb = -(0.75 * std::log(0.75) + 0.25 * std::log(0.25));
  const double mi = 0.5 * std::log(0.5 / (0.5 * 0.75)) + 0.25 * std::log(0.25 / (0.5 * 0.75)) +
                    0.25 * std::log(0.25 / (0.5 * 0.25));
  EXPECT_NEAR(normalized_mutual_information(x, b), mi / std::sqrt(ha * hb), 1e-12);
}

DeepClusterConfig tiny_dc() {
  DeepClusterConfig c;
  c.encoder = testing::tiny_image_encoder();  // features 16
  c.projection.hidden = 16;
  c.projection.out = 8;
  c.clusters = 4;
  c.pca_dim = 4;
  c.kmeans_iterations = 10;
  c.feature_batch = 7;  // not a divisor of the set: the last chunk is short
  return c;
}

struct TinySet {
  torch::Tensor images = torch::rand({40, 1, 12, 12});
  torch::Tensor labels = torch::arange(40) % 4;
  void attach(DeepCluster& m) const {
    torch::Tensor x = images;
    m.set_training_set(
        40, [x](int64_t b, int64_t e) { return x.narrow(0, b, e - b); }, labels, 5);
  }
};

TEST_F(DeepClusterTest, EachPhaseClustersTheSetSamplesUniformlyAndResetsTheTopLayer) {
  DeepCluster m(tiny_dc());
  TinySet set;
  set.attach(m);
  EXPECT_EQ(m.phase_steps(16), 3);  // ceil(40 / 16)
  torch::Tensor feats = m.training_features();
  ASSERT_EQ(feats.sizes(), torch::IntArrayRef({40, 8}));
  EXPECT_TRUE(torch::allclose(feats.narrow(0, 10, 5), [&] {
    torch::NoGradGuard g;
    m.eval();
    auto f = m.features(set.images.narrow(0, 10, 5), "projection");
    m.train();
    return f;
  }()));
  torch::Tensor top_before = m.top->weight.detach().clone();
  auto reset = m.begin_phase(0);
  ASSERT_EQ(reset.size(), 2u);  // the new top layer's weight and bias
  EXPECT_FALSE(m.top->weight.equal(top_before));
  EXPECT_LT(m.top->weight.std().item<double>(), 0.02);
  EXPECT_EQ(m.top->bias.abs().sum().item<double>(), 0);
  EXPECT_EQ(m.assignments.numel(), 40);
  EXPECT_EQ(m.assigned_phase.item<int64_t>(), 0);
  EXPECT_EQ(m.centroids.sizes(), torch::IntArrayRef({4, 4}));
  torch::Tensor counts = torch::bincount(m.assignments, {}, 4);
  EXPECT_EQ(counts.eq(0).sum().item<int64_t>(), 0);
  // The phase's order: 40 items, each cluster equally often up to the truncation (40/4 + 1 = 11
  // drawn per cluster, 44 shuffled, 40 kept), whatever the cluster sizes.
  torch::Tensor order = m.phase_items(0, 40);
  torch::Tensor per_cluster = torch::bincount(m.assignments.index_select(0, order), {}, 4);
  EXPECT_LE(per_cluster.max().item<int64_t>(), 11);
  EXPECT_GE(per_cluster.min().item<int64_t>(), 7);
  EXPECT_TRUE(m.phase_items(38, 4).equal(
      torch::cat({order.narrow(0, 38, 2), order.narrow(0, 0, 2)})));  // wraps around
  // The same phase again (a resume): no new clustering, no new top layer, the same order.
  torch::Tensor labels = m.assignments.clone(), top = m.top->weight.detach().clone();
  EXPECT_TRUE(m.begin_phase(0).empty());
  EXPECT_TRUE(m.assignments.equal(labels));
  EXPECT_TRUE(m.top->weight.equal(top));
  EXPECT_TRUE(m.phase_items(0, 40).equal(order));
  // The next phase clusters again.
  EXPECT_EQ(m.begin_phase(1).size(), 2u);
  EXPECT_EQ(m.assigned_phase.item<int64_t>(), 1);
}

TEST_F(DeepClusterTest, TwoStepsRunAndTheLossFallsOnOneBatch) {
  DeepCluster m(tiny_dc());
  TinySet set;
  set.attach(m);
  m.begin_phase(0);
  Batch b;
  b.index = m.phase_items(0, 16);
  b.input = set.images.index_select(0, b.index);
  b.views = {b.input};
  StepOutput out = m.step(b);
  EXPECT_TRUE(std::isfinite(out.loss.item<double>()));
  EXPECT_TRUE(out.metrics.count("pseudo_acc"));
  EXPECT_TRUE(out.metrics.count("nmi_labels"));
  EXPECT_TRUE(out.metrics.count("kmeans_loss"));
  auto [first, last] = overfit(m, b, 40, 1e-2);
  EXPECT_LT(last, first - 0.3) << "first " << first << " last " << last;
  EXPECT_EQ(m.features(b.input, "encoder").sizes(), torch::IntArrayRef({16, 16}));
  EXPECT_EQ(m.features(b.input, "projection").sizes(), torch::IntArrayRef({16, 8}));
  EXPECT_GE(m.features(b.input, "projection").min().item<double>(), 0);  // after the ReLU
}

TEST_F(DeepClusterTest, CheckpointKeepsLabelsCentroidsAndPhase) {
  DeepCluster m(tiny_dc());
  TinySet set;
  set.attach(m);
  m.begin_phase(2);
  DeepCluster back(tiny_dc());
  testing::checkpoint_roundtrip(m, back);
  EXPECT_TRUE(back.assignments.equal(m.assignments));
  EXPECT_TRUE(back.centroids.equal(m.centroids));
  EXPECT_EQ(back.assigned_phase.item<int64_t>(), 2);
  set.attach(back);
  EXPECT_TRUE(back.begin_phase(2).empty());  // resumed inside phase 2: nothing recomputed
  EXPECT_TRUE(back.phase_items(0, 40).equal(m.phase_items(0, 40)));
}

TEST_F(DeepClusterTest, ConfigErrorsNameTheKey) {
  DeepClusterConfig c = tiny_dc();
  c.clusters = 1;
  EXPECT_NE(config_error([&] { DeepCluster m(c); }).find("clusters"), std::string::npos);
  c = tiny_dc();
  c.pca_dim = 9;
  EXPECT_NE(config_error([&] { DeepCluster m(c); }).find("pca_dim"), std::string::npos);
  c = tiny_dc();
  c.clusters = 50;
  DeepCluster big(c);
  EXPECT_NE(config_error([&] { TinySet().attach(big); }).find("method.clusters"),
            std::string::npos);
  DeepCluster m(tiny_dc());
  EXPECT_NE(config_error([&] { m.check_batch(8, 2); }).find("augment.views"), std::string::npos);
  EXPECT_NE(config_error([&] { m.check_batch(1, 1); }).find("train.batch_size"), std::string::npos);
}

}  // namespace
}  // namespace contra::method
