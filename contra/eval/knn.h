#pragma once
/// Weighted k-nearest-neighbour classifier on frozen features — the kNN monitor of Wu et al. 2018
/// ("Unsupervised Feature Learning via Non-Parametric Instance Discrimination", arXiv:1805.01978,
/// §3.4), as used by MoCo, solo-learn and lightly to follow representation quality during training.
#include <cstdint>
#include <string>

#include <torch/arg.h>
#include <torch/types.h>

namespace contra::eval {

struct KnnOptions {
  /// Neighbours per query (>= 1). Clamped to the training set size N when k > N.
  TORCH_ARG(int64_t, k) = 200;
  /// Vote temperature T (> 0) of the "exp" weighting: neighbour j votes exp(s_j / T).
  TORCH_ARG(double, temperature) = 0.07;
  /// "exp" (Wu et al.: weight exp(s_j / T)) or "uniform" (plain majority vote, weight 1).
  TORCH_ARG(std::string, weighting) = "exp";
  /// Test queries per FAISS search (>= 1): bounds the (chunk, k) similarity/index buffers and the
  /// (chunk, classes) vote table.
  TORCH_ARG(int64_t, chunk) = 1024;
};

/// What the kNN classifier reports.
struct KnnResult {
  /// Fraction of test items whose predicted class is their label.
  double top1 = 0;
  /// Fraction whose label is among the 5 classes with the largest summed votes (ties → lower class
  /// id first). NaN when classes < 5 (not reported: it would be 1 by construction).
  double top5 = 0;
  /// k actually used (min(options.k, train_size)).
  int64_t k = 0;
  /// max(train_y, test_y) + 1.
  int64_t classes = 0;
  int64_t dim = 0;
  int64_t train_size = 0;
  int64_t test_size = 0;
  /// Wall time of the whole evaluation (validation, normalisation, index, search, votes).
  double seconds = 0;
};

/// Classifies each test feature by a weighted vote of its k most cosine-similar training features.
/// Features are L2-normalised, so the inner product is the cosine similarity s ∈ [−1, 1]; the
/// search is exact (FAISS IndexFlatIP over all N training features, queried `chunk` test items at a
/// time). With N_k(x) the k nearest training items of x:
///   score_c(x) = Σ_{j ∈ N_k(x), y_j = c} w_j,   w_j = exp(s_j / T)   ("exp")   or 1   ("uniform")
///   ŷ(x) = argmax_c score_c(x), ties → lowest class id
/// (The weights are computed as exp((s_j − s_max) / T), which has the same argmax and cannot
/// overflow for small T.) k > N is clamped to N: every training item then votes.
///
/// train_x (N, D) / test_x (M, D) floating point on any device (copied to CPU float32),
/// train_y (N) / test_y (M) integer class ids >= 0. Throws ConfigError for bad options (k < 1,
/// temperature <= 0, unknown weighting, chunk < 1) and DataError naming the tensor for mismatched
/// shapes or feature sizes, empty sets, non-integer or negative labels, or NaN/Inf features.
///
///   auto r = knn_classify(train_feats, train_labels, test_feats, test_labels,
///                         KnnOptions().k(200).temperature(0.1));
///   fmt::print("kNN top-1 {:.1f}% (k = {})\n", 100 * r.top1, r.k);
KnnResult knn_classify(const torch::Tensor& train_x, const torch::Tensor& train_y,
                       const torch::Tensor& test_x, const torch::Tensor& test_y,
                       const KnnOptions& options = {});

/// The predicted class ŷ(x) of every test feature, as in knn_classify: (M) int64 on the CPU. The
/// classes are 0 .. max(train_y). Throws as knn_classify.
///
///   auto pred = knn_predict(train_feats, train_labels, test_feats, KnnOptions().k(20));
torch::Tensor knn_predict(const torch::Tensor& train_x, const torch::Tensor& train_y,
                          const torch::Tensor& test_x, const KnnOptions& options = {});

}  // namespace contra::eval
