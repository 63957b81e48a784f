#include "contra/loss/common.h"

#include <torch/torch.h>

#include <limits>

namespace contra::loss {

std::string_view to_string(Distance distance) {
  switch (distance) {
    case Distance::kEuclidean:
      return "euclidean";
    case Distance::kSquaredEuclidean:
      return "squared_euclidean";
    case Distance::kCosine:
      return "cosine";
  }
  return "?";
}

Distance parse_distance(std::string_view text, std::string_view key) {
  for (Distance d : {Distance::kEuclidean, Distance::kSquaredEuclidean, Distance::kCosine}) {
    if (text == to_string(d)) return d;
  }
  throw ConfigError(fmt::format(
      "{}: unknown distance (got '{}', expected euclidean, squared_euclidean or cosine)", key,
      text));
}

torch::Tensor l2_normalize(const torch::Tensor& x, int64_t dim, double eps, double scale) {
  torch::Tensor norm = x.norm(2, {dim}, /*keepdim=*/true).clamp_min(eps);
  return x / (scale == 1.0 ? norm : norm / scale);
}

torch::Tensor pairwise_distance(const torch::Tensor& a, const torch::Tensor& b, Distance distance) {
  if (distance == Distance::kEuclidean) return torch::cdist(a, b);
  if (distance == Distance::kCosine) {
    torch::Tensor an = l2_normalize(a);
    return 1 - torch::mm(an, a.is_same(b) ? an.t() : l2_normalize(b).t());
  }
  // One product of augmented rows, (N, D + 2)·(M, D + 2)ᵀ, instead of a product and two broadcast
  // additions: fewer passes over the (N, M) result, forward and backward.
  torch::Tensor a2 = a.pow(2).sum(1, /*keepdim=*/true);                      // (N, 1)
  torch::Tensor b2 = a.is_same(b) ? a2 : b.pow(2).sum(1, /*keepdim=*/true);  // (M, 1)
  torch::Tensor left = torch::cat({a * -2, a2, torch::ones_like(a2)}, 1);    // (N, D + 2)
  torch::Tensor right = torch::cat({b, torch::ones_like(b2), b2}, 1);        // (M, D + 2)
  return torch::mm(left, right.t()).clamp_min(0);
}

torch::Tensor paired_distance(const torch::Tensor& a, const torch::Tensor& b, Distance distance) {
  if (distance == Distance::kCosine) return 1 - (l2_normalize(a) * l2_normalize(b)).sum(1);
  torch::Tensor diff = a - b;
  return distance == Distance::kEuclidean ? diff.norm(2, {1}) : diff.pow(2).sum(1);
}

namespace {

struct LogSumExp : public torch::autograd::Function<LogSumExp> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               int64_t dim) {
    torch::Tensor shift = x.amax(dim, /*keepdim=*/true);
    shift.masked_fill_(shift.isinf(), 0);  // rows of −inf (or +inf) must not become NaN here
    torch::Tensor e = (x - shift).exp_();
    torch::Tensor sum = e.sum(dim, /*keepdim=*/true);
    ctx->save_for_backward({e, sum});
    ctx->saved_data["dim"] = dim;
    return (sum.log() + shift).squeeze(dim);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const int64_t dim = ctx->saved_data["dim"].toInt();
    auto saved = ctx->get_saved_variables();
    // ∂/∂x log Σ e^x = softmax(x) = e / Σe.
    return {saved[0] * (grads[0].unsqueeze(dim) / saved[1]), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor logsumexp(const torch::Tensor& x, int64_t dim) {
  return LogSumExp::apply(x, dim < 0 ? dim + x.dim() : dim);
}

torch::Tensor same_label_mask(const torch::Tensor& labels) {
  return labels.unsqueeze(0) == labels.unsqueeze(1);
}

torch::Tensor positive_mask(const torch::Tensor& labels) {
  torch::Tensor same = labels.unsqueeze(0) == labels.unsqueeze(1);
  return same.logical_and(torch::eye(labels.size(0), same.options()).logical_not());
}

torch::Tensor negative_mask(const torch::Tensor& labels) {
  return labels.unsqueeze(0) != labels.unsqueeze(1);
}

int64_t num_classes(const torch::Tensor& labels) {
  return std::get<0>(torch::unique_consecutive(std::get<0>(labels.sort()))).size(0);
}

namespace detail {

double tiny_for(const torch::Tensor& t) {
  return t.scalar_type() == torch::kDouble ? 1e-290 : 1e-30;
}

void check_positive(double value, std::string_view key) {
  check<ConfigError>(value > 0, "{}: must be > 0 (got {})", key, value);
}

void check_non_negative(double value, std::string_view key) {
  check<ConfigError>(value >= 0, "{}: must be >= 0 (got {})", key, value);
}

void check_embeddings(const torch::Tensor& x, std::string_view component, std::string_view name) {
  TORCH_CHECK(x.defined(), component, ": ", name, " is undefined");
  TORCH_CHECK(x.dim() == 2, component, ": ", name, " must be (N, D), got ", x.sizes());
  TORCH_CHECK(x.size(0) > 0, component, ": empty batch (", name, " is ", x.sizes(), ")");
  TORCH_CHECK(x.size(1) > 0, component, ": ", name, " has no features (", x.sizes(), ")");
  TORCH_CHECK(x.is_floating_point(), component, ": ", name, " must be floating point, got ",
              x.scalar_type());
}

void check_same_shape(const torch::Tensor& a, const torch::Tensor& b, std::string_view component,
                      std::string_view name_a, std::string_view name_b) {
  TORCH_CHECK(b.defined(), component, ": ", name_b, " is undefined");
  TORCH_CHECK(a.sizes() == b.sizes(), component, ": ", name_a, " and ", name_b,
              " must have the same shape, got ", a.sizes(), " and ", b.sizes());
}

void check_labels(const torch::Tensor& labels, int64_t n, std::string_view component) {
  TORCH_CHECK(labels.defined(), component, ": labels are undefined");
  TORCH_CHECK(labels.dim() == 1 && labels.size(0) == n, component, ": labels must be (", n,
              "), got ", labels.sizes());
  TORCH_CHECK(!labels.is_floating_point(), component, ": labels must be integers, got ",
              labels.scalar_type());
}

torch::Tensor check_scores(const torch::Tensor& positive, const torch::Tensor& negative,
                           std::string_view component) {
  TORCH_CHECK(positive.defined() && negative.defined(), component,
              ": positive and negative scores must be defined");
  TORCH_CHECK(negative.dim() == 2, component, ": negative must be (N, K), got ", negative.sizes());
  TORCH_CHECK(negative.size(0) > 0, component, ": empty batch (negative is ", negative.sizes(),
              ")");
  TORCH_CHECK(negative.size(1) > 0, component, ": no negatives (negative is ", negative.sizes(),
              ")");
  torch::Tensor pos = positive.dim() == 2 && positive.size(1) == 1 ? positive.squeeze(1) : positive;
  TORCH_CHECK(pos.dim() == 1 && pos.size(0) == negative.size(0), component,
              ": positive must be (N) or (N, 1) with N = ", negative.size(0), ", got ",
              positive.sizes());
  return pos;
}

}  // namespace detail
}  // namespace contra::loss
