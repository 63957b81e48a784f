#include "contra/nn/queue.h"

#include <torch/torch.h>

#include "contra/core/error.h"

namespace contra::nn {

KeyQueueImpl::KeyQueueImpl(KeyQueueOptions options_) : options(std::move(options_)) {
  check<ConfigError>(options.dim() > 0, "key queue: dim must be > 0 (got {})", options.dim());
  check<ConfigError>(options.size() > 0, "key queue: size must be > 0 (got {})", options.size());
  reset();
}

void KeyQueueImpl::reset() {
  auto opts = torch::TensorOptions().dtype(torch::kFloat);
  if (queue.defined()) opts = opts.device(queue.device());
  torch::Tensor q = torch::randn({options.dim(), options.size()}, opts);
  q = q / q.norm(2, {0}, /*keepdim=*/true).clamp_min(1e-12);
  queue = register_buffer("queue", q);
  ptr = register_buffer("ptr", torch::zeros({1}, opts.dtype(torch::kLong)));
}

void KeyQueueImpl::dequeue_and_enqueue(const torch::Tensor& keys) {
  TORCH_CHECK(keys.defined() && keys.dim() == 2 && keys.size(1) == options.dim(),
              "key queue: keys must be (B, ", options.dim(), "), got ",
              keys.defined() ? keys.sizes() : torch::IntArrayRef{});
  const int64_t b = keys.size(0);
  check<ConfigError>(b <= options.size(),
                     "key queue: a batch of {} keys does not fit in a queue of {} (batch <= size)",
                     b, options.size());
  if (b == 0) return;
  torch::NoGradGuard no_grad;
  // Columns ptr, ptr + 1, ..., ptr + B − 1 (mod K), computed on the device.
  torch::Tensor columns = (ptr + torch::arange(b, ptr.options())).remainder(options.size());
  queue.index_copy_(1, columns, keys.detach().to(queue.dtype()).t());
  ptr.add_(b).remainder_(options.size());
}

int64_t KeyQueueImpl::pointer() const { return ptr.item<int64_t>(); }

}  // namespace contra::nn
