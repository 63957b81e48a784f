#pragma once
/// Triplet loss (Schroff, Kalenichenko & Philbin 2015, "FaceNet", arXiv:1503.03832; batch mining as
/// in Hermans, Beyer & Leibe 2017, "In Defense of the Triplet Loss", arXiv:1703.07737):
///
///   ℓ(a, p, n) = max(0, d(a, p) − d(a, n) + margin),
///
/// d the Euclidean distance, or its square with `squared` (FaceNet uses squared distances of unit
/// vectors with margin 0.2). Two forms:
/// - explicit triplets: anchor, positive, negative (N, D) → mean over the N triplets;
/// - mined from labels within a batch: embeddings (N, D), labels (N) →
///   * batch_all: mean over every valid triplet (a ≠ p, y_a = y_p, y_n ≠ y_a), zero-loss ones
///     included (O(N³) time and memory);
///   * batch_hard: per anchor, the farthest positive and the nearest negative; mean over anchors
///     with at least one of each;
///   * semi_hard (FaceNet §3.2): per positive pair (a, p), the nearest negative farther from a
///     than p (d(a, n) > d(a, p)); when there is none, the farthest negative (as
///     tfa.losses.TripletSemiHardLoss does); mean over the positive pairs of anchors that have a
///     negative.
/// Batch-hard and semi-hard pick their pairs on a distance matrix without gradient and recompute
/// only the picked distances with gradient (O(N·D) backward). Distances have zero gradient at 0, so
/// identical embeddings stay finite. Throws ConfigError for margin < 0, c10::Error for shape
/// mismatches or an empty batch, and DataError when the labels give no valid triplet (every anchor
/// lacks a positive or a negative).
///
///   auto opts = TripletOptions().margin(0.2).mining(TripletMining::kSemiHard);
///   auto loss = contra::loss::functional::triplet_mined(embeddings, labels, opts);
#include <string_view>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "contra/loss/common.h"

namespace contra::loss {

/// How triplets are formed from a labelled batch.
enum class TripletMining { kBatchAll, kBatchHard, kSemiHard };
/// "batch_all", "batch_hard", "semi_hard".
std::string_view to_string(TripletMining mining);
TripletMining parse_triplet_mining(std::string_view text, std::string_view key = "mining");

struct TripletOptions {
  /// Margin (>= 0) by which the negative must be farther than the positive.
  TORCH_ARG(double, margin) = 1.0;
  /// Use squared Euclidean distances (FaceNet) instead of Euclidean ones.
  TORCH_ARG(bool, squared) = false;
  /// Mining strategy of the labelled form.
  TORCH_ARG(TripletMining, mining) = TripletMining::kBatchHard;

 public:
  template <class V>
  void visit(V& v) {
    v("margin", margin(), "margin (>= 0)");
    v("squared", squared(), "squared Euclidean distances");
    detail::visit_choice(v, "mining", mining(), "batch_all | batch_hard | semi_hard",
                         parse_triplet_mining);
  }
  void validate() const { detail::check_non_negative(margin(), "margin"); }
};

namespace functional {
/// Explicit triplets: anchor, positive, negative (N, D) → scalar.
torch::Tensor triplet(const torch::Tensor& anchor, const torch::Tensor& positive,
                      const torch::Tensor& negative, const TripletOptions& options = {});
/// Triplets mined from labels: embeddings (N, D), labels (N) → scalar.
torch::Tensor triplet_mined(const torch::Tensor& embeddings, const torch::Tensor& labels,
                            const TripletOptions& options = {});
}  // namespace functional

/// Module form: forward(embeddings, labels) mines; triplets(a, p, n) takes explicit triplets.
class TripletImpl : public torch::nn::Cloneable<TripletImpl> {
 public:
  explicit TripletImpl(TripletOptions options = {});
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& embeddings, const torch::Tensor& labels);
  torch::Tensor triplets(const torch::Tensor& anchor, const torch::Tensor& positive,
                         const torch::Tensor& negative);
  TripletOptions options;
};
TORCH_MODULE(Triplet);

}  // namespace contra::loss
