#include "contra/loss/nt_xent.h"

#include <limits>

#include <torch/torch.h>

namespace contra::loss {
namespace functional {

torch::Tensor nt_xent(const torch::Tensor& z1, const torch::Tensor& z2,
                      const torch::Tensor& memory_bank, const NTXentOptions& options) {
  detail::validate(options, "nt_xent");
  detail::check_embeddings(z1, "nt_xent", "z1");
  detail::check_same_shape(z1, z2, "nt_xent", "z1", "z2");
  const int64_t n = z1.size(0);
  torch::Tensor z = torch::cat({z1, z2}, 0);  // (2N, D)
  if (options.normalize()) z = l2_normalize(z);
  const double inv_t = 1.0 / options.temperature();
  torch::Tensor logits = torch::mm(z, z.t()) * inv_t;  // (2N, 2N)
  torch::Tensor self = torch::eye(2 * n, logits.options().dtype(torch::kBool));
  // Positive of row i: the other view, column (i + N) mod 2N; read before masking the diagonal.
  torch::Tensor partner =
      torch::arange(2 * n, logits.options().dtype(torch::kLong)).add(n) % (2 * n);
  torch::Tensor positive = logits.gather(1, partner.unsqueeze(1)).squeeze(1);
  logits = logits.masked_fill(self, -std::numeric_limits<double>::infinity());
  if (memory_bank.defined()) {
    TORCH_CHECK(memory_bank.dim() == 2 && memory_bank.size(1) == z1.size(1),
                "nt_xent: memory_bank must be (M, ", z1.size(1), "), got ", memory_bank.sizes());
    torch::Tensor bank = options.normalize() ? l2_normalize(memory_bank) : memory_bank;
    logits = torch::cat({logits, torch::mm(z, bank.t()) * inv_t}, 1);  // (2N, 2N + M)
  }
  return (torch::logsumexp(logits, 1) - positive).mean();
}

}  // namespace functional

NTXentImpl::NTXentImpl(NTXentOptions options_) : options(std::move(options_)) {
  detail::validate(options, "nt_xent");
}

torch::Tensor NTXentImpl::forward(const torch::Tensor& z1, const torch::Tensor& z2,
                                  const torch::Tensor& memory_bank) {
  return functional::nt_xent(z1, z2, memory_bank, options);
}

}  // namespace contra::loss
