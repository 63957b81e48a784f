#include "contra/nn/projection_head.h"

#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/nn/batch_norm.h"

namespace contra::nn {

ProjectionHeadImpl::ProjectionHeadImpl(ProjectionHeadOptions options_)
    : options(std::move(options_)) {
  check<ConfigError>(options.in() > 0, "projection_head: in must be > 0 (got {})", options.in());
  check<ConfigError>(options.hidden() > 0, "projection_head: hidden must be > 0 (got {})",
                     options.hidden());
  check<ConfigError>(options.out() > 0, "projection_head: out must be > 0 (got {})", options.out());
  check<ConfigError>(options.layers() >= 1, "projection_head: layers must be >= 1 (got {})",
                     options.layers());
  reset();
}

void ProjectionHeadImpl::reset() {
  mlp_ = register_module("mlp", torch::nn::Sequential());
  int64_t in = options.in();
  for (int64_t l = 0; l + 1 < options.layers(); ++l) {
    mlp_->push_back(torch::nn::Linear(
        torch::nn::LinearOptions(in, options.hidden()).bias(!options.batch_norm())));
    if (options.batch_norm()) mlp_->push_back(BatchNorm(options.hidden()));
    mlp_->push_back(torch::nn::ReLU());
    in = options.hidden();
  }
  mlp_->push_back(torch::nn::Linear(
      torch::nn::LinearOptions(in, options.out()).bias(!options.last_batch_norm())));
  if (options.last_batch_norm()) {
    mlp_->push_back(BatchNorm(BatchNormOptions(options.out()).affine(false)));
  }
}

torch::Tensor ProjectionHeadImpl::forward(const torch::Tensor& input) {
  TORCH_CHECK(input.dim() == 2 && input.size(1) == options.in(),
              "projection_head: input must be (N, ", options.in(), "), got ", input.sizes());
  return mlp_->forward(input);
}

}  // namespace contra::nn
