#pragma once
/// BYOL regression loss (Grill et al. 2020, "Bootstrap Your Own Latent", arXiv:2006.07733, eq. 2)
/// and SimSiam's negative cosine (Chen & He 2021, arXiv:2011.10566):
///
///   normalized_mse:   ℓ = ‖p̂ − ẑ‖² = 2 − 2·cos(p, z)
///   negative_cosine:  ℓ = −cos(p, z)
///
/// mean over the N rows; p the online prediction, z the target projection. The loss does not stop
/// gradients: pass `target.detach()` (SimSiam) or a target from a no-grad EMA network (BYOL);
/// symmetrising over the two views is the method's job.
///
/// Shapes: prediction (N, D), target (N, D) → scalar. Norms are clamped, so zero vectors give a
/// finite loss (cos = 0). Throws c10::Error for shape mismatches or an empty batch.
///
///   auto loss = contra::loss::functional::byol(p1, z2.detach()) +
///               contra::loss::functional::byol(p2, z1.detach());
#include <string_view>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "contra/loss/common.h"

namespace contra::loss {

/// Which regression form.
enum class ByolForm { kNormalizedMse, kNegativeCosine };
/// "normalized_mse", "negative_cosine".
std::string_view to_string(ByolForm form);
ByolForm parse_byol_form(std::string_view text, std::string_view key = "form");

struct ByolOptions {
  /// kNormalizedMse (BYOL, 2 − 2cos) or kNegativeCosine (SimSiam, −cos).
  TORCH_ARG(ByolForm, form) = ByolForm::kNormalizedMse;

 public:
  template <class V>
  void visit(V& v) {
    detail::visit_choice(v, "form", form(), "normalized_mse | negative_cosine", parse_byol_form);
  }
  void validate() const {}
};

namespace functional {
torch::Tensor byol(const torch::Tensor& prediction, const torch::Tensor& target,
                   const ByolOptions& options = {});
}  // namespace functional

class ByolImpl : public torch::nn::Cloneable<ByolImpl> {
 public:
  explicit ByolImpl(ByolOptions options = {});
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& prediction, const torch::Tensor& target);
  ByolOptions options;
};
TORCH_MODULE(Byol);

}  // namespace contra::loss
