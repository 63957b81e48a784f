#include "contra/loss/barlow_twins.h"

#include <torch/torch.h>

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

}  // namespace functional

BarlowTwinsImpl::BarlowTwinsImpl(BarlowTwinsOptions options_) : options(std::move(options_)) {
  detail::validate(options, "barlow_twins");
}

torch::Tensor BarlowTwinsImpl::forward(const torch::Tensor& z1, const torch::Tensor& z2) {
  return functional::barlow_twins(z1, z2, options);
}

}  // namespace contra::loss
