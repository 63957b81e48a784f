#include "contra/loss/nt_xent.h"

#include <limits>

#include <torch/torch.h>

#include "contra/dist/collectives.h"

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
  torch::Tensor keys = z;  // the 2N views, then the bank: (2N + M, D)
  if (memory_bank.defined()) {
    TORCH_CHECK(memory_bank.dim() == 2 && memory_bank.size(1) == z1.size(1),
                "nt_xent: memory_bank must be (M, ", z1.size(1), "), got ", memory_bank.sizes());
    keys = torch::cat({z, options.normalize() ? l2_normalize(memory_bank) : memory_bank}, 0);
  }
  torch::Tensor zt = z / options.temperature();
  torch::Tensor logits = torch::mm(zt, keys.t());  // (2N, 2N + M)
  // Drop k = i from the denominator (in place: the diagonal gets no gradient).
  logits.diagonal().fill_(-std::numeric_limits<double>::infinity());
  // Positive of row i: the other view, row (i + N) mod 2N of z, from the (2N, D) rows.
  torch::Tensor positive = (zt * z.roll(n, 0)).sum(1);
  return (logsumexp(logits, 1) - positive).mean();
}

torch::Tensor nt_xent_global(const torch::Tensor& z1, const torch::Tensor& z2,
                             const NTXentOptions& options) {
  dist::Group& group = dist::world();
  if (group.size() == 1) return nt_xent(z1, z2, {}, options);
  detail::validate(options, "nt_xent");
  detail::check_embeddings(z1, "nt_xent", "z1");
  detail::check_same_shape(z1, z2, "nt_xent", "z1", "z2");
  const int64_t n = z1.size(0), global = n * group.size(), offset = group.rank() * n;
  torch::Tensor local = torch::cat({z1, z2}, 0);  // (2N, D) anchors
  torch::Tensor keys = torch::cat({dist::all_gather(z1), dist::all_gather(z2)}, 0);  // (2WN, D)
  if (options.normalize()) {
    local = l2_normalize(local);
    keys = l2_normalize(keys);
  }
  torch::Tensor zt = local / options.temperature();
  torch::Tensor logits = torch::mm(zt, keys.t());  // (2N, 2WN)
  // Row j < N is z1[j] = key offset + j; row N + j is z2[j] = key global + offset + j.
  torch::Tensor rows = torch::arange(n, logits.options().dtype(torch::kLong));
  torch::Tensor self = torch::cat({rows + offset, rows + global + offset});
  logits = logits.scatter(1, self.unsqueeze(1), -std::numeric_limits<double>::infinity());
  torch::Tensor positive = (zt * local.roll(n, 0)).sum(1);
  return (logsumexp(logits, 1) - positive).mean();
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
