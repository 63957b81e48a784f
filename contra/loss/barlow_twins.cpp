#include "contra/loss/barlow_twins.h"

#include <torch/torch.h>

#include "contra/dist/collectives.h"

namespace contra::loss {
namespace functional {

torch::Tensor barlow_twins(const torch::Tensor& z1, const torch::Tensor& z2,
                           const BarlowTwinsOptions& options) {
  detail::validate(options, "barlow_twins");
  detail::check_embeddings(z1, "barlow_twins", "z1");
  detail::check_same_shape(z1, z2, "barlow_twins", "z1", "z2");
  const int64_t n = z1.size(0);
  TORCH_CHECK(n >= 2, "barlow_twins: needs a batch of at least 2 for its statistics (got N = ", n,
              ")");
  // BatchNorm1d(affine=False) in training mode, as the official code: ATen's fused kernel.
  auto standardize = [&](const torch::Tensor& z) {
    return torch::batch_norm(z, {}, {}, {}, {}, /*training=*/true, /*momentum=*/0.0, options.eps(),
                             /*cudnn_enabled=*/true);
  };
  torch::Tensor c = torch::mm(standardize(z1).t(), standardize(z2)) / static_cast<double>(n);
  torch::Tensor diag = c.diagonal();
  torch::Tensor on = (diag - 1).pow(2).sum();
  torch::Tensor off = c.pow(2).sum() - diag.pow(2).sum();
  return on + options.lambd() * off;
}

torch::Tensor barlow_twins_global(const torch::Tensor& z1, const torch::Tensor& z2,
                                  const BarlowTwinsOptions& options) {
  if (dist::world().size() == 1) return barlow_twins(z1, z2, options);
  detail::validate(options, "barlow_twins");
  detail::check_embeddings(z1, "barlow_twins", "z1");
  detail::check_same_shape(z1, z2, "barlow_twins", "z1", "z2");
  const int64_t d = z1.size(1);
  double total = 0;
  // Standardised with the statistics of every rank's rows (biased variance, as BatchNorm).
  auto standardize = [&](const torch::Tensor& z) {
    torch::Tensor packed =
        dist::all_reduce_sum(torch::cat({z.sum(0), torch::full({1}, static_cast<double>(z.size(0)),
                                                               z.options().requires_grad(false))}));
    total = packed[d].item<double>();
    TORCH_CHECK(total >= 2, "barlow_twins: needs a global batch of at least 2");
    torch::Tensor centred = z - packed.narrow(0, 0, d) / total;
    torch::Tensor var = dist::all_reduce_sum(centred.pow(2).sum(0)) / total;
    return centred * torch::rsqrt(var + options.eps());
  };
  torch::Tensor s1 = standardize(z1), s2 = standardize(z2);
  torch::Tensor c = dist::all_reduce_sum(torch::mm(s1.t(), s2)) / total;
  torch::Tensor diag = c.diagonal();
  torch::Tensor on = (diag - 1).pow(2).sum();
  torch::Tensor off = c.pow(2).sum() - diag.pow(2).sum();
  return on + options.lambd() * off;
}

}  // namespace functional

BarlowTwinsImpl::BarlowTwinsImpl(BarlowTwinsOptions options_) : options(std::move(options_)) {
  detail::validate(options, "barlow_twins");
}

torch::Tensor BarlowTwinsImpl::forward(const torch::Tensor& z1, const torch::Tensor& z2) {
  return functional::barlow_twins(z1, z2, options);
}

}  // namespace contra::loss
