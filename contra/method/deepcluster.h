#pragma once
/// DeepCluster (Caron, Bojanowski, Joulin & Douze 2018, "Deep Clustering for Unsupervised Learning
/// of Visual Features", arXiv:1807.05520; the official facebookresearch code): alternate k-means
/// on the network's features of the whole training set with training the network to predict the
/// cluster ids as pseudo-labels.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include "contra/method/image_common.h"
#include "contra/method/method.h"
#include "contra/nn/image_encoder.h"
#include "contra/nn/projection_head.h"

namespace contra::method {

/// `method:` of `name: deepcluster`. The paper (AlexNet/VGG on ImageNet): k = 10,000 clusters,
/// features PCA-whitened to 256 dimensions and L2-normalised, 20 k-means iterations (FAISS),
/// clustering every epoch, a new top layer each time.
///
///   method:
///     name: deepcluster
///     encoder: {type: small_cnn, width: 32}
///     projection: {hidden: 512, out: 256}
///     clusters: 100
struct DeepClusterConfig {
  nn::ImageEncoderConfig encoder;
  /// The MLP between the backbone and the top layer (AlexNet's fc6–fc7); its ReLU output is what
  /// is clustered.
  ProjectionConfig projection{/*hidden=*/0, /*out=*/256, /*layers=*/2, /*batch_norm=*/true};
  int64_t clusters = 10000;
  int64_t pca_dim = 256;  // 0 = no PCA-whitening
  int64_t kmeans_iterations = 20;
  int64_t reassign_every = 0;  // optimizer steps between clusterings (0 = one epoch)
  int64_t feature_batch = 256;
  int64_t online_probe_classes = 0;
  template <class V>
  void visit(V& v) {
    v("encoder", encoder, "the backbone f(·)");
    v("projection", projection, "the MLP g(·) before the top layer; ReLU(g(f(x))) is clustered");
    v("clusters", clusters, "k of k-means: the number of pseudo-classes (>= 2)");
    v("pca_dim", pca_dim, "PCA-whitening of the features before k-means (0 = off)");
    v("kmeans_iterations", kmeans_iterations, "k-means iterations (FAISS; >= 1)");
    v("reassign_every", reassign_every,
      "optimizer steps between clusterings (0 = one epoch of the training set)");
    v("feature_batch", feature_batch, "images per forward pass when computing the features");
    v("online_probe_classes", online_probe_classes,
      "0 = off; C = train a linear classifier on detached features alongside (online_acc)");
  }
  void validate() const;
};

/// k-means of points x (n, d) float32 into k clusters: FAISS's Lloyd iterations (k-means++-free
/// random initialisation, as the paper's faiss.Clustering), then the final assignment of every
/// point to its nearest centroid, with empty clusters handled as in the paper (§3.3): an empty
/// cluster takes a randomly chosen non-empty cluster's centroid with a small random perturbation,
/// the donor the opposite perturbation, and the donor's points are reassigned between the two;
/// repeated until no cluster is empty, then every point is assigned to its nearest centroid again.
/// Throws ConfigError when n < k, NumericalError when the points cannot fill k clusters (fewer than
/// k distinct points).
struct KMeansResult {
  torch::Tensor centroids;    // (k, d) float32
  torch::Tensor assignments;  // (n) int64: the nearest centroid of each point
  double objective = 0;       // Σ squared distance to the assigned centroid
  int64_t splits = 0;         // empty clusters refilled
};
KMeansResult kmeans(const torch::Tensor& x, int64_t k, int64_t iterations, uint64_t seed);

/// The paper's empty-cluster rule on given centroids and assignments (what kmeans() ends with).
/// Returns the number of splits; centroids and assignments are updated in place.
int64_t fill_empty_clusters(const torch::Tensor& x, torch::Tensor& centroids,
                            torch::Tensor& assignments, uint64_t seed);

/// PCA-whitening of x (n, D) to d dimensions, as the official code's faiss.PCAMatrix(D, d,
/// eigen_power=−0.5): centred, projected on the covariance's top-d eigenvectors, each component
/// divided by √(λ + ε) with ε = 1e-8·λ_max (so directions without variance stay finite). (n, d)
/// float32 with (nearly) identity covariance.
torch::Tensor pca_whiten(const torch::Tensor& x, int64_t d);

/// Normalised mutual information of two labelings of the same items (the paper's NMI, Fig. 2),
/// in [0, 1]; 1 for two identical partitions.
double normalized_mutual_information(const torch::Tensor& a, const torch::Tensor& b);

/// DeepCluster. At the start of each phase (an epoch, or `reassign_every` steps):
///   1. features ReLU(g(f(x))) of every training image, network in eval mode, no augmentation
///      (distributed: each rank a share, gathered);
///   2. PCA-whitening to pca_dim dimensions (pca_whiten), L2 normalisation;
///   3. k-means (kmeans() above) → the pseudo-label of each image (rank 0 clusters; centroids and
///      labels are broadcast);
///   4. a new top layer Linear(D, k) (weights N(0, 0.01), bias 0; the trainer clears its optimizer
///      state);
///   5. the phase's sampling order: uniform over the non-empty clusters — N/k' + 1 items drawn
///      from each (with replacement when the cluster is smaller), shuffled, the first N kept
///      (the official UnifLabelSampler).
/// Then each step trains f, g and the top layer with cross-entropy on the pseudo-labels of the
/// batch's items (Batch::index), on one augmented view.
///
/// Pseudo-labels, centroids and the phase they belong to are module state (a resumed run continues
/// the phase it stopped in with the same labels and order). Metrics: dc_loss, pseudo_acc; from the
/// last clustering: nmi_prev (NMI to the previous clustering), nmi_labels (to the true labels,
/// when every training image has one), kmeans_loss, empty_splits.
/// features(x, "encoder") = f(x); "projection" = ReLU(g(f(x))).
class DeepCluster : public Method {
 public:
  /// Normalised, un-augmented training images [begin, end) as (end − begin, C, H, W) float.
  using ImagesFn = std::function<torch::Tensor(int64_t begin, int64_t end)>;

  explicit DeepCluster(DeepClusterConfig config);
  StepOutput step(const Batch& batch) override;
  torch::Tensor features(const torch::Tensor& input, const std::string& kind) override;
  std::string name() const override { return "deepcluster"; }
  const DeepClusterConfig& config() const { return config_; }
  /// ConfigError unless 1 view and a batch of >= 2 (BatchNorm).
  void check_batch(int64_t batch_size, int64_t views) const;

  /// The training set: its size, its images, its labels ((n) int64, −1 = none; may be undefined)
  /// and the seed of the run. Needed before begin_phase.
  void set_training_set(int64_t size, ImagesFn images, torch::Tensor labels, uint64_t seed);
  /// Optimizer steps per phase for a global batch of `global_batch` images per step.
  int64_t phase_steps(int64_t global_batch) const;
  /// Steps 1–5 above for phase `phase` (1–4 skipped when the labels already belong to this phase,
  /// after a resume). Returns the top layer's parameters when they were re-initialised.
  std::vector<torch::Tensor> begin_phase(int64_t phase);
  /// Dataset positions of the items at positions [first, first + count) of this phase's order
  /// (wrapping around).
  torch::Tensor phase_items(int64_t first, int64_t count) const;
  /// ReLU(g(f(x))) of every training image, (n, D) float32 on the CPU (step 1).
  torch::Tensor training_features();

  torch::nn::AnyModule encoder;
  nn::ProjectionHead projector{nullptr};
  torch::nn::Linear top{nullptr};
  OnlineProbe probe{nullptr};
  /// (n) int64 pseudo-labels, (k, d) centroids, and the phase they were computed for (−1: none).
  torch::Tensor assignments, centroids, assigned_phase;

 private:
  void recluster(int64_t phase);
  DeepClusterConfig config_;
  int64_t size_ = 0;
  ImagesFn images_;
  torch::Tensor labels_;
  uint64_t seed_ = 0;
  torch::Tensor order_;  // this phase's sampling order (n) int64
  std::map<std::string, double> cluster_metrics_;
};

}  // namespace contra::method
