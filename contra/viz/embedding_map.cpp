#include "contra/viz/embedding_map.h"

#include <cmath>
#include <limits>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "contra/core/error.h"

namespace contra::viz {

torch::Tensor pca(const torch::Tensor& x, std::int64_t k) {
  check<DataError>(x.defined() && x.dim() == 2 && x.size(0) >= 2,
                   "pca: expected (N, D) points with N >= 2");
  check<ConfigError>(k >= 1 && k <= std::min(x.size(0), x.size(1)),
                     "pca: components must be 1..min(N, D) = {} (got {})",
                     std::min(x.size(0), x.size(1)), k);
  torch::NoGradGuard no_grad;
  torch::Tensor xc = x.to(torch::kDouble);
  xc = xc - xc.mean(0, true);
  auto [u, s, vh] = torch::linalg::svd(xc, /*full_matrices=*/false, c10::nullopt);
  torch::Tensor v = vh.narrow(0, 0, k);  // (k, D)
  torch::Tensor biggest = v.abs().argmax(1, true);
  torch::Tensor sign = v.gather(1, biggest).sign();
  sign.masked_fill_(sign.eq(0), 1);
  return xc.matmul((v * sign).t()).to(torch::kFloat);
}

namespace {

// Conditional Gaussian affinities P(j|i) with per-row precision beta found by bisection so that
// each row's entropy is log(perplexity); returns the symmetrised joint P (sums to 1).
torch::Tensor joint_probabilities(const torch::Tensor& x, double perplexity) {
  const std::int64_t n = x.size(0);
  torch::Tensor sq = x.pow(2).sum(1);
  torch::Tensor d = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * x.matmul(x.t())).clamp_min(0);
  torch::Tensor off = torch::ones({n, n}, torch::kBool).fill_diagonal_(false);
  // Shift each row by its smallest distance to another point: P(j|i) is unchanged, exp() is safe.
  torch::Tensor dmin =
      d.masked_fill(off.logical_not(), std::numeric_limits<double>::infinity()).amin(1, true);
  d = (d - dmin).masked_fill(off.logical_not(), 0);
  const double target = std::log(perplexity);
  torch::Tensor beta = torch::ones({n, 1}, torch::kDouble);
  torch::Tensor lo = torch::full({n, 1}, 0.0, torch::kDouble);
  torch::Tensor hi = torch::full({n, 1}, std::numeric_limits<double>::infinity(), torch::kDouble);
  torch::Tensor p;
  for (int it = 0; it < 200; ++it) {
    p = torch::exp(-d * beta) * off;
    torch::Tensor sum = p.sum(1, true).clamp_min(1e-300);
    torch::Tensor h = torch::log(sum) + beta * (d * p).sum(1, true) / sum;
    torch::Tensor diff = h - target;
    if (diff.abs().max().item<double>() < 1e-5) break;
    torch::Tensor too_flat = diff.gt(0);  // entropy too high: sharpen (raise beta)
    lo = torch::where(too_flat, beta, lo);
    hi = torch::where(too_flat, hi, beta);
    beta = torch::where(hi.isinf(), beta * 2, (lo + hi) / 2);
  }
  p = p / p.sum(1, true).clamp_min(1e-300);
  p = (p + p.t()) / (2.0 * static_cast<double>(n));
  return p.clamp_min(1e-12).masked_fill(off.logical_not(), 0);
}

}  // namespace

torch::Tensor tsne(const torch::Tensor& x_in, const TsneOptions& o) {
  check<DataError>(x_in.defined() && x_in.dim() == 2, "tsne: expected (N, D) points");
  const std::int64_t n = x_in.size(0);
  check<ConfigError>(o.perplexity > 0, "tsne: perplexity must be > 0 (got {})", o.perplexity);
  check<ConfigError>(
      static_cast<double>(n) - 1 > o.perplexity,
      "tsne: {} points are too few for perplexity {} (need more than perplexity + 1)", n,
      o.perplexity);
  check<ConfigError>(o.iterations >= 1 && o.exaggeration_iterations >= 0,
                     "tsne: iterations must be >= 1 and exaggeration_iterations >= 0");
  check<ConfigError>(o.exaggeration >= 1, "tsne: exaggeration must be >= 1 (got {})",
                     o.exaggeration);
  check<ConfigError>(o.learning_rate >= 0, "tsne: learning_rate must be >= 0 (got {})",
                     o.learning_rate);
  torch::NoGradGuard no_grad;
  torch::Tensor x = x_in.to(torch::kDouble);
  check<DataError>(torch::isfinite(x).all().item<bool>(), "tsne: non-finite input values");
  if (o.initial_dims > 0 && x.size(1) > o.initial_dims && n > o.initial_dims) {
    x = pca(x, o.initial_dims).to(torch::kDouble);
  }
  torch::Tensor p = joint_probabilities(x, o.perplexity).to(torch::kFloat);
  const double lr = o.learning_rate > 0
                        ? o.learning_rate
                        : std::max(static_cast<double>(n) / o.exaggeration / 4.0, 50.0);
  auto gen = at::detail::createCPUGenerator(o.seed);
  torch::Tensor y = torch::randn({n, 2}, gen, torch::kFloat) * 1e-2;  // N(0, 1e-4 I)
  torch::Tensor update = torch::zeros_like(y), gains = torch::ones_like(y);
  if (o.exaggeration_iterations > 0) p = p * o.exaggeration;
  for (std::int64_t it = 0; it < o.iterations; ++it) {
    if (it == o.exaggeration_iterations && o.exaggeration_iterations > 0) p = p / o.exaggeration;
    // num_ij = (1 + |y_i - y_j|²)^-1, q = num / Z; dC/dy_i = 4 Σ_j (p_ij - q_ij) num_ij (y_i -
    // y_j).
    torch::Tensor sq = y.pow(2).sum(1, true).add_(1);
    torch::Tensor num = torch::addmm(sq, y, y.t(), 1.0, -2.0).add_(sq.t()).reciprocal_();
    num.fill_diagonal_(0);
    const double z = num.sum().item<double>();
    torch::Tensor w = torch::add(p, num, -1.0 / z).mul_(num);
    torch::Tensor grad = (w.sum(1, true) * y - w.matmul(y)) * 4.0;
    const double momentum = it < o.exaggeration_iterations ? 0.5 : 0.8;
    torch::Tensor opposite = (grad * update).lt(0);
    gains = torch::where(opposite, gains + 0.2, gains * 0.8).clamp_min(0.01);
    update = momentum * update - lr * gains * grad;
    y = y + update;
    y = y - y.mean(0, true);
  }
  check<NumericalError>(torch::isfinite(y).all().item<bool>(), "tsne: the map diverged");
  return y;
}

double knn_accuracy(const torch::Tensor& x, const torch::Tensor& labels, std::int64_t k) {
  const std::int64_t n = x.size(0);
  check<DataError>(labels.dim() == 1 && labels.size(0) == n && n > k && k >= 1,
                   "knn_accuracy: need N > k points with N labels");
  torch::NoGradGuard no_grad;
  torch::Tensor d = torch::cdist(x.to(torch::kFloat), x.to(torch::kFloat));
  d.fill_diagonal_(std::numeric_limits<float>::infinity());
  torch::Tensor nearest = std::get<1>(d.topk(k, 1, /*largest=*/false));
  torch::Tensor votes = labels.to(torch::kLong).index({nearest});  // (N, k)
  torch::Tensor predicted = std::get<0>(votes.mode(1));
  return predicted.eq(labels.to(torch::kLong)).to(torch::kDouble).mean().item<double>();
}

}  // namespace contra::viz
