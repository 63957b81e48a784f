#include "contra/loss/contrastive.h"

#include <torch/torch.h>

namespace contra::loss {

void ContrastiveOptions::validate() const {
  detail::check_non_negative(margin(), "margin");
  check<ConfigError>(distance() == Distance::kEuclidean || distance() == Distance::kCosine,
                     "distance: must be euclidean or cosine (got {})", to_string(distance()));
}

namespace functional {

torch::Tensor contrastive(const torch::Tensor& x1, const torch::Tensor& x2,
                          const torch::Tensor& similar, const ContrastiveOptions& options) {
  detail::validate(options, "contrastive");
  detail::check_embeddings(x1, "contrastive", "x1");
  detail::check_same_shape(x1, x2, "contrastive", "x1", "x2");
  TORCH_CHECK(similar.defined() && similar.dim() == 1 && similar.size(0) == x1.size(0),
              "contrastive: similar must be (", x1.size(0), "), got ",
              similar.defined() ? similar.sizes() : torch::IntArrayRef{});
  if (similar.is_floating_point()) {  // every value exactly 0 or 1
    torch::Tensor bad = (similar != 0).logical_and(similar != 1);
    if (bad.any().item<bool>()) {
      throw DataError(fmt::format("contrastive: similar must hold 0 or 1 (got {})",
                                  similar.masked_select(bad)[0].item<double>()));
    }
  } else if (similar.scalar_type() != torch::kBool) {  // integers: the range is enough
    auto [lo, hi] = torch::aminmax(similar);
    const int64_t low = lo.item<int64_t>(), high = hi.item<int64_t>();
    check<DataError>(low >= 0 && high <= 1, "contrastive: similar must hold 0 or 1 (got {})",
                     low < 0 ? low : high);
  }
  torch::Tensor d = paired_distance(x1, x2, options.distance());  // (N)
  torch::Tensor hinge = (options.margin() - d).clamp_min(0);
  // y·d² + (1 − y)·hinge² in one fused op.
  return torch::lerp(hinge.pow(2), d.pow(2), similar.to(x1.scalar_type())).mean();
}

}  // namespace functional

ContrastiveImpl::ContrastiveImpl(ContrastiveOptions options_) : options(std::move(options_)) {
  detail::validate(options, "contrastive");
}

torch::Tensor ContrastiveImpl::forward(const torch::Tensor& x1, const torch::Tensor& x2,
                                       const torch::Tensor& similar) {
  return functional::contrastive(x1, x2, similar, options);
}

}  // namespace contra::loss
