#include "contra/loss/swav.h"

#include <cmath>

#include <torch/torch.h>

#include "contra/dist/collectives.h"

namespace contra::loss {

void SwAVOptions::validate() const {
  detail::check_positive(temperature(), "temperature");
  detail::check_positive(epsilon(), "epsilon");
  check<ConfigError>(sinkhorn_iterations() >= 1, "sinkhorn_iterations: must be >= 1 (got {})",
                     sinkhorn_iterations());
  check<ConfigError>(!crops_for_assign().empty(), "crops_for_assign: must name at least one view");
  for (int64_t v : crops_for_assign()) {
    check<ConfigError>(v >= 0, "crops_for_assign: view indices must be >= 0 (got {})", v);
  }
}

namespace functional {

namespace {

// The official code's Q = exp(scores/ε)ᵀ (K, B) and its row/column divisions, in log space:
// immune to overflow and underflow, ~3× the work of the exp form.
torch::Tensor sinkhorn_log(const torch::Tensor& scores, double epsilon, int64_t iterations) {
  const double log_b = std::log(static_cast<double>(scores.size(0)));
  const double log_k = std::log(static_cast<double>(scores.size(1)));
  torch::Tensor log_q = scores.t() / epsilon;
  log_q = log_q - torch::logsumexp(log_q.reshape({-1}), 0);
  for (int64_t it = 0; it < iterations; ++it) {
    log_q = log_q - torch::logsumexp(log_q, 1, /*keepdim=*/true) - log_k;  // rows sum to 1/K
    log_q = log_q - torch::logsumexp(log_q, 0, /*keepdim=*/true) - log_b;  // columns to 1/B
  }
  return (log_q + log_b).exp().t();
}

}  // namespace

torch::Tensor sinkhorn_knopp(const torch::Tensor& scores, double epsilon, int64_t iterations) {
  TORCH_CHECK(scores.dim() == 2 && scores.size(0) > 0 && scores.size(1) > 0,
              "sinkhorn_knopp: scores must be (B, K) with B, K > 0, got ", scores.sizes());
  detail::check_positive(epsilon, "sinkhorn_knopp: epsilon");
  torch::NoGradGuard no_grad;
  const double b = static_cast<double>(scores.size(0));
  const double k = static_cast<double>(scores.size(1));
  torch::Tensor s = scores.detach();
  // The official exp form, shifted by the largest score (a constant factor the first normalisation
  // removes) so that exp cannot overflow.
  torch::Tensor q = ((s.t() - s.max()) / epsilon).exp_();  // (K, B)
  q.div_(q.sum());
  for (int64_t it = 0; it < iterations; ++it) {
    q.div_(q.sum(1, /*keepdim=*/true).mul_(k));  // rows (prototypes) sum to 1/K
    q.div_(q.sum(0, /*keepdim=*/true).mul_(b));  // columns (samples) sum to 1/B
  }
  q.mul_(b);
  // A prototype or a sample whose every exp underflowed makes a 0/0: redo it in log space.
  if (!std::isfinite(q.sum().item<double>())) return sinkhorn_log(s, epsilon, iterations);
  return q.t();
}

torch::Tensor sinkhorn_knopp_global(const torch::Tensor& scores, double epsilon,
                                    int64_t iterations) {
  dist::Group& group = dist::world();
  if (group.size() == 1) return sinkhorn_knopp(scores, epsilon, iterations);
  TORCH_CHECK(scores.dim() == 2 && scores.size(1) > 0,
              "sinkhorn_knopp_global: scores must be (B, K) with K > 0, got ", scores.sizes());
  detail::check_positive(epsilon, "sinkhorn_knopp_global: epsilon");
  torch::NoGradGuard no_grad;
  torch::Tensor s = scores.detach();
  const double k = static_cast<double>(s.size(1));
  const double b = dist::all_reduce_sum(std::vector<double>{static_cast<double>(s.size(0))})[0];
  TORCH_CHECK(b > 0, "sinkhorn_knopp_global: every rank's batch is empty");
  // One shift for all ranks (the largest score anywhere), so the exponentials are those of the
  // concatenated scores.
  torch::Tensor local_max =
      s.numel() > 0 ? s.max().reshape({1}) : torch::full({1}, -1e300, s.options());
  torch::Tensor shift = dist::concat_all_gather(local_max).max();
  torch::Tensor q = ((s.t() - shift) / epsilon).exp_();  // (K, B_rank)
  q.div_(dist::all_reduce_sum(q.sum()));
  for (int64_t it = 0; it < iterations; ++it) {
    q.div_(dist::all_reduce_sum(q.sum(1, /*keepdim=*/true)).mul_(k));  // rows: global 1/K
    q.div_(q.sum(0, /*keepdim=*/true).mul_(b));                        // columns: 1/B_global
  }
  q.mul_(b);
  if (!dist::any_rank(!std::isfinite(q.sum().item<double>()))) return q.t();
  // Some exponential underflowed on some rank: the log-space form on the gathered scores (all
  // ranks take this branch together), this rank's rows.
  const int64_t n = s.size(0);
  torch::Tensor all = dist::concat_all_gather(s);
  return sinkhorn_log(all, epsilon, iterations).narrow(0, group.rank() * n, n);
}

torch::Tensor swav(const torch::Tensor& scores, const SwAVOptions& options) {
  detail::validate(options, "swav");
  TORCH_CHECK(scores.defined() && scores.dim() == 3, "swav: scores must be (V, B, K), got ",
              scores.defined() ? scores.sizes() : torch::IntArrayRef{});
  const int64_t views = scores.size(0);
  TORCH_CHECK(views >= 2, "swav: needs at least 2 views, got scores ", scores.sizes());
  TORCH_CHECK(scores.size(1) > 0 && scores.size(2) > 0, "swav: empty batch (scores is ",
              scores.sizes(), ")");
  for (int64_t a : options.crops_for_assign()) {
    check<ConfigError>(a < views, "swav: crops_for_assign: view {} out of range (got {} views)", a,
                       views);
  }
  // Every prediction term is −(1/B) Σ q^a ⊙ log p^v over pairs (a assigned, v ≠ a): gather the
  // codes into one target per view, (V, B, K) without gradient, and take a single dense product.
  torch::Tensor target = torch::zeros_like(scores);
  {
    torch::NoGradGuard no_grad;
    for (int64_t a : options.crops_for_assign()) {
      torch::Tensor q =
          sinkhorn_knopp(scores[a], options.epsilon(), options.sinkhorn_iterations());  // (B, K)
      for (int64_t v = 0; v < views; ++v) {
        if (v != a) target[v].add_(q);
      }
    }
    target.div_(static_cast<double>(scores.size(1) * (views - 1) *
                                    static_cast<int64_t>(options.crops_for_assign().size())));
  }
  return -(target * torch::log_softmax(scores / options.temperature(), 2)).sum();
}

}  // namespace functional

SwAVImpl::SwAVImpl(SwAVOptions options_) : options(std::move(options_)) {
  detail::validate(options, "swav");
}

torch::Tensor SwAVImpl::forward(const torch::Tensor& scores) {
  return functional::swav(scores, options);
}

}  // namespace contra::loss
