#pragma once
/// Shared pieces of the loss library: embedding distances that stay differentiable at zero,
/// L2 normalisation with clamped norms, label masks, and the option checks every loss uses.
///
/// Every loss in contra/loss follows one pattern (DESIGN.md §3): an `XxxOptions` struct (TORCH_ARG
/// fields, a `visit` member for the config system and a `validate` member), a `functional::xxx`
/// form that holds the math, and an `XxxImpl` module whose `forward` calls it.
///
///   auto d = contra::loss::pairwise_distance(x, x, Distance::kEuclidean);   // (N, N), zero
///   diagonal
#include <cstdint>
#include <string>
#include <string_view>

#include <torch/types.h>

#include "contra/core/error.h"

namespace contra::loss {

/// Distance between embeddings used by the metric losses (contrastive, triplet, soft nearest
/// neighbours). Cosine distance is 1 − cos(a, b) ∈ [0, 2].
enum class Distance { kEuclidean, kSquaredEuclidean, kCosine };

/// "euclidean", "squared_euclidean", "cosine".
std::string_view to_string(Distance distance);
/// Parses the names above; throws ConfigError naming `key`, the bad value and the valid ones.
Distance parse_distance(std::string_view text, std::string_view key = "distance");

/// x / max(‖x‖₂, eps) along `dim` (as torch.nn.functional.normalize): zero vectors stay zero and
/// the gradient stays finite.
/// With `scale`, scale·x / max(‖x‖₂, eps) for the cost of one pass (a temperature folded in).
torch::Tensor l2_normalize(const torch::Tensor& x, int64_t dim = -1, double eps = 1e-12,
                           double scale = 1.0);

/// Distances (N, M) between the rows of a (N, D) and b (M, D): Euclidean is torch::cdist (one
/// matrix product for large inputs; zero gradient where two rows coincide); squared Euclidean is
/// ‖a‖² + ‖b‖² − 2a·b from one product of the augmented rows [−2a, ‖a‖², 1]·[b, 1, ‖b‖²], clamped
/// at 0; cosine is 1 − â·b̂ with clamped norms. Self-distances (a is b) carry rounding noise on the
/// diagonal instead of exact zeros: callers exclude the diagonal.
torch::Tensor pairwise_distance(const torch::Tensor& a, const torch::Tensor& b, Distance distance);

/// Distances (N) between matching rows of a (N, D) and b (N, D), from the differences a − b
/// (the Euclidean norm's gradient is 0 where a = b).
torch::Tensor paired_distance(const torch::Tensor& a, const torch::Tensor& b, Distance distance);

/// log Σ exp(x) along `dim` (the dimension removed), as torch::logsumexp, but the backward reuses
/// the exponentials saved by the forward: one pass over x instead of three (a large share of the
/// cost of cross-entropies over many negatives). Rows of −inf give −inf. Not twice differentiable.
torch::Tensor logsumexp(const torch::Tensor& x, int64_t dim);

/// (N, N) bool: labels[i] == labels[j] (the diagonal included).
torch::Tensor same_label_mask(const torch::Tensor& labels);
/// (N, N) bool: labels[i] == labels[j] and i ≠ j.
torch::Tensor positive_mask(const torch::Tensor& labels);
/// (N, N) bool: labels[i] != labels[j].
torch::Tensor negative_mask(const torch::Tensor& labels);
/// Number of distinct labels (for error messages).
int64_t num_classes(const torch::Tensor& labels);

namespace detail {

/// Smallest sum of exponentials trusted in the linear-space fast paths: below it (near the
/// subnormal range of float or double) the losses are recomputed in log space.
double tiny_for(const torch::Tensor& t);

/// Runs options.validate() and prefixes a ConfigError with "<component>: ".
template <class Options>
void validate(const Options& options, std::string_view component) {
  try {
    options.validate();
  } catch (const ConfigError& e) {
    throw ConfigError(std::string(component) + ": " + e.what());
  }
}

/// ConfigError "<key>: must be > 0 (got v)" unless value > 0 (NaN fails).
void check_positive(double value, std::string_view key);
/// ConfigError "<key>: must be >= 0 (got v)" unless value >= 0.
void check_non_negative(double value, std::string_view key);

/// TORCH_CHECK: x is 2-D (N, D) with N > 0 and D > 0.
void check_embeddings(const torch::Tensor& x, std::string_view component, std::string_view name);
/// TORCH_CHECK: b has the same shape as a.
void check_same_shape(const torch::Tensor& a, const torch::Tensor& b, std::string_view component,
                      std::string_view name_a, std::string_view name_b);
/// TORCH_CHECK: labels is 1-D with n integer entries.
void check_labels(const torch::Tensor& labels, int64_t n, std::string_view component);
/// TORCH_CHECK: scores are (N) or (N, 1) (returned as (N)) matching N rows of negative (N, K), K
/// >= 1.
torch::Tensor check_scores(const torch::Tensor& positive, const torch::Tensor& negative,
                           std::string_view component);

/// For a choice option in `visit`: exposes the enum as its name to the config visitor, then parses
/// it back (a ConfigError lists the valid names).
template <class V, class E, class Parse>
void visit_choice(V& v, const char* key, E& value, const char* doc, Parse parse) {
  std::string text(to_string(value));  // found by argument-dependent lookup
  v(key, text, doc);
  value = parse(text, key);
}

}  // namespace detail
}  // namespace contra::loss
