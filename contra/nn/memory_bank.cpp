#include "contra/nn/memory_bank.h"

#include <cmath>

#include <torch/torch.h>

#include "contra/core/error.h"

namespace contra::nn {

MemoryBankImpl::MemoryBankImpl(MemoryBankOptions options_) : options(std::move(options_)) {
  check<ConfigError>(options.size() > 0, "memory bank: size must be > 0 (got {})", options.size());
  check<ConfigError>(options.dim() > 0, "memory bank: dim must be > 0 (got {})", options.dim());
  check<ConfigError>(options.momentum() >= 0 && options.momentum() < 1,
                     "memory bank: momentum must be in [0, 1) (got {})", options.momentum());
  reset();
}

void MemoryBankImpl::reset() {
  auto opts = torch::TensorOptions().dtype(torch::kFloat);
  if (memory.defined()) opts = opts.device(memory.device());
  const double a = std::sqrt(3.0 / static_cast<double>(options.dim()));
  memory =
      register_buffer("memory", torch::rand({options.size(), options.dim()}, opts) * 2 * a - a);
}

void MemoryBankImpl::check_indices(const torch::Tensor& indices, bool unique) const {
  TORCH_CHECK(indices.defined() && indices.dim() == 1 && !indices.is_floating_point(),
              "memory bank: indices must be (B) integers, got ",
              indices.defined() ? indices.sizes() : torch::IntArrayRef{});
  if (indices.numel() == 0) return;
  const int64_t lo = indices.min().item<int64_t>();
  const int64_t hi = indices.max().item<int64_t>();
  check<DataError>(lo >= 0 && hi < options.size(),
                   "memory bank: index out of range (got {}, expected 0..{})", lo < 0 ? lo : hi,
                   options.size() - 1);
  if (unique) {
    const int64_t distinct =
        std::get<0>(torch::unique_consecutive(std::get<0>(indices.sort()))).numel();
    check<DataError>(distinct == indices.numel(),
                     "memory bank: an update repeats indices ({} indices, {} distinct)",
                     indices.numel(), distinct);
  }
}

torch::Tensor MemoryBankImpl::get(const torch::Tensor& indices) const {
  check_indices(indices, /*unique=*/false);
  return memory.index_select(0, indices.to(memory.device(), torch::kLong)).detach();
}

void MemoryBankImpl::update(const torch::Tensor& indices, const torch::Tensor& features) {
  check_indices(indices, /*unique=*/true);
  TORCH_CHECK(features.defined() && features.dim() == 2 && features.size(0) == indices.size(0) &&
                  features.size(1) == options.dim(),
              "memory bank: features must be (", indices.size(0), ", ", options.dim(), "), got ",
              features.defined() ? features.sizes() : torch::IntArrayRef{});
  torch::NoGradGuard no_grad;
  torch::Tensor idx = indices.to(memory.device(), torch::kLong);
  torch::Tensor mixed = memory.index_select(0, idx) * options.momentum() +
                        features.detach().to(memory.dtype()) * (1 - options.momentum());
  memory.index_copy_(0, idx, mixed / mixed.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12));
}

}  // namespace contra::nn
