#include "contra/loss/info_nce.h"

#include <torch/torch.h>

#include "contra/core/error.h"

namespace contra::loss::functional {

torch::Tensor info_nce_logits(const torch::Tensor& positive, const torch::Tensor& negative,
                              const InfoNCEOptions& options) {
  check<ConfigError>(options.temperature() > 0, "info_nce: temperature must be > 0 (got {})",
                     options.temperature());
  TORCH_CHECK(negative.dim() == 2, "info_nce: negative must be (N, K), got ", negative.sizes());
  torch::Tensor pos = positive.dim() == 1 ? positive.unsqueeze(1) : positive;
  TORCH_CHECK(pos.dim() == 2 && pos.size(1) == 1 && pos.size(0) == negative.size(0),
              "info_nce: positive must be (N) or (N, 1) with N = ", negative.size(0), ", got ",
              positive.sizes());
  TORCH_CHECK(negative.size(0) > 0, "info_nce: empty batch (N = 0)");
  return torch::cat({pos, negative}, 1) / options.temperature();
}

torch::Tensor info_nce(const torch::Tensor& positive, const torch::Tensor& negative,
                       const InfoNCEOptions& options) {
  torch::Tensor logits = info_nce_logits(positive, negative, options);
  // -log softmax(logits)[:, 0]  ==  logsumexp(logits) - logits[:, 0]
  return (torch::logsumexp(logits, 1) - logits.select(1, 0)).mean();
}

}  // namespace contra::loss::functional
