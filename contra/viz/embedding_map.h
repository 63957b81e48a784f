#pragma once
/// 2-D maps of embeddings: PCA and exact t-SNE (van der Maaten & Hinton 2008), in LibTorch.
#include <cstdint>

#include <torch/types.h>

namespace contra::viz {

/// Projection of x (N, D) onto its top-k principal components (centred; components from the SVD of
/// the centred data, each signed so that its largest-magnitude loading is positive). (N, k).
torch::Tensor pca(const torch::Tensor& x, std::int64_t k = 2);

struct TsneOptions {
  double perplexity = 30;
  std::int64_t iterations = 1000;
  std::int64_t exaggeration_iterations = 250;  // early exaggeration, and momentum 0.5, until here
  double exaggeration = 12;
  double learning_rate = 0;        // 0: max(N / exaggeration / 4, 50) (Belkina et al. 2019)
  std::int64_t initial_dims = 50;  // PCA to this many dimensions first (0 = off)
  std::uint64_t seed = 0;          // the random initial map N(0, 1e-4 I)
};

/// Exact t-SNE of x (N, D) to 2-D: per-point Gaussian bandwidths by binary search to the
/// perplexity, symmetrised P, Student-t Q, gradient descent with momentum 0.5 → 0.8 and adaptive
/// gains (min 0.01), early exaggeration; O(N²) memory and time per iteration. ConfigError for
/// bad options or too few points (the perplexity must be below N - 1). Returns (N, 2) float.
torch::Tensor tsne(const torch::Tensor& x, const TsneOptions& options = {});

/// Leave-one-out k-nearest-neighbour accuracy of labels (N) in the space of x (N, D), Euclidean,
/// majority vote. For checking that a map keeps clusters apart.
double knn_accuracy(const torch::Tensor& x, const torch::Tensor& labels, std::int64_t k = 5);

}  // namespace contra::viz
