#include "contra/nn/batch_norm.h"

#include <ostream>

#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/dist/collectives.h"

namespace contra::nn {

BatchNormImpl::BatchNormImpl(BatchNormOptions options_) : options(options_) {
  check<ConfigError>(options.features() >= 1, "batch_norm: features must be >= 1 (got {})",
                     options.features());
  check<ConfigError>(options.eps() > 0, "batch_norm: eps must be > 0 (got {})", options.eps());
  check<ConfigError>(options.momentum() >= 0 && options.momentum() <= 1,
                     "batch_norm: momentum must be in [0, 1] (got {})", options.momentum());
  reset();
}

void BatchNormImpl::reset() {
  const int64_t c = options.features();
  if (options.affine()) {
    weight = register_parameter("weight", torch::ones({c}));
    bias = register_parameter("bias", torch::zeros({c}));
  } else {
    weight = register_parameter("weight", torch::Tensor(), /*requires_grad=*/false);
    bias = register_parameter("bias", torch::Tensor(), /*requires_grad=*/false);
  }
  if (options.track_running_stats()) {
    running_mean = register_buffer("running_mean", torch::zeros({c}));
    running_var = register_buffer("running_var", torch::ones({c}));
    num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(0, torch::kLong));
  } else {
    running_mean = register_buffer("running_mean", torch::Tensor());
    running_var = register_buffer("running_var", torch::Tensor());
    num_batches_tracked = register_buffer("num_batches_tracked", torch::Tensor());
  }
}

torch::Tensor BatchNormImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() >= 2 && x.size(1) == options.features(), "batch_norm: expected (N, ",
              options.features(), ", ...), got ", x.sizes());
  const bool training = is_training();
  if (training && options.track_running_stats()) num_batches_tracked.add_(1);
  if (!training || !options.sync() || dist::world().size() == 1) {
    return torch::batch_norm(x, weight, bias, running_mean, running_var,
                             training || !options.track_running_stats(), options.momentum(),
                             options.eps(), at::globalContext().userEnabledCuDNN());
  }
  // Statistics in at least float32 (a half-precision count or sum overflows at 65504).
  const bool low = x.scalar_type() == torch::kHalf || x.scalar_type() == torch::kBFloat16;
  const torch::Tensor xs = low ? x.to(torch::kFloat) : x;
  std::vector<int64_t> dims{0}, shape(static_cast<std::size_t>(x.dim()), 1);
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  shape[1] = options.features();
  const double local = static_cast<double>(x.numel() / options.features());
  // Σx and the item count in one all-reduce; then Σ(x − μ)² (two passes: the exact variance).
  torch::Tensor packed = dist::all_reduce_sum(
      torch::cat({xs.sum(dims), torch::full({1}, local, xs.options().requires_grad(false))}));
  const double count = packed[options.features()].item<double>();
  TORCH_CHECK(count > 1, "batch_norm: synchronised statistics need more than 1 value per channel");
  torch::Tensor mean = packed.narrow(0, 0, options.features()) / count;
  torch::Tensor centred = xs - mean.view(shape);
  torch::Tensor var = dist::all_reduce_sum(centred.pow(2).sum(dims)) / count;
  torch::Tensor y = centred * torch::rsqrt(var + options.eps()).view(shape);
  if (options.affine())
    y = y * weight.view(shape).to(y.scalar_type()) + bias.view(shape).to(y.scalar_type());
  if (low) y = y.to(x.scalar_type());
  if (options.track_running_stats()) {
    torch::NoGradGuard no_grad;
    const double m = options.momentum();
    running_mean.mul_(1 - m).add_(mean.detach().to(running_mean.scalar_type()), m);
    running_var.mul_(1 - m).add_(
        (var.detach() * (count / (count - 1))).to(running_var.scalar_type()), m);
  }
  return y;
}

void BatchNormImpl::pretty_print(std::ostream& stream) const {
  stream << "contra::nn::BatchNorm(" << options.features() << ", eps=" << options.eps()
         << ", momentum=" << options.momentum() << ", affine=" << options.affine()
         << ", sync=" << options.sync() << ")";
}

int64_t set_sync_batch_norm(torch::nn::Module& module, bool sync) {
  int64_t n = 0;
  for (auto& m : module.modules(/*include_self=*/true)) {
    if (auto* bn = dynamic_cast<BatchNormImpl*>(m.get())) {
      bn->options.sync(sync);
      ++n;
    }
  }
  return n;
}

}  // namespace contra::nn
