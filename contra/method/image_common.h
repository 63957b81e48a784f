#pragma once
/// Pieces shared by the image methods (SimCLR, MoCo, and the later BYOL/Barlow/SwAV): the
/// projection-head section, the online linear probe, and per-split encoding (simulated per-device
/// BatchNorm).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "contra/nn/projection_head.h"

namespace contra::method {

/// `method.projection`: the MLP head g(·) (contra::nn::ProjectionHead).
struct ProjectionConfig {
  int64_t hidden = 0;  // 0 = the encoder's output size (SimCLR: 2048 → 2048 → 128)
  int64_t out = 128;
  int64_t layers = 2;
  bool batch_norm = true;
  template <class V>
  void visit(V& v) {
    v("hidden", hidden, "hidden width (0 = the encoder's output size)");
    v("out", out, "output size of z (> 0)");
    v("layers", layers, "Linear layers (1 = a linear map, 2 = SimCLR / MoCo v2, 3 = SimCLR v2)");
    v("batch_norm", batch_norm, "BatchNorm1d after each hidden Linear");
  }
  void validate() const;
  /// The head's options for an encoder of `in` features.
  nn::ProjectionHeadOptions options(int64_t in) const;
};

/// Online linear probe (as solo-learn's): a Linear(D, classes) trained on the *detached* encoder
/// features with its own cross-entropy, added to the method's loss. The stop-gradient keeps the
/// labels out of the representation; the probe only reports how linearly separable the features
/// are while training runs. Items with label < 0 (unlabelled) are ignored.
class OnlineProbeImpl : public torch::nn::Cloneable<OnlineProbeImpl> {
 public:
  OnlineProbeImpl(int64_t features, int64_t classes);
  void reset() override;
  /// Cross-entropy of the probe on features.detach() (zero when no item is labelled); adds
  /// "probe_loss" and "online_acc" to `metrics` when some are.
  torch::Tensor forward(const torch::Tensor& features, const torch::Tensor& labels,
                        std::map<std::string, double>& metrics);

  int64_t features, classes;
  torch::nn::Linear linear{nullptr};
};
TORCH_MODULE(OnlineProbe);

/// Encodes `images` (N, C, H, W) in `splits` equal chunks, each its own forward pass — so each
/// chunk's BatchNorm statistics are its own, as on `splits` devices with per-device BN (MoCo's
/// setting, which shuffle-BN relies on). splits = 1 is one ordinary forward. Throws ConfigError
/// when N is not a multiple of splits.
torch::Tensor encode_in_splits(torch::nn::AnyModule& encoder, const torch::Tensor& images,
                               int64_t splits);

/// Top-1 accuracy of the instance task for L2-normalised logits rows whose positive is column 0.
double top1_of_column0(const torch::Tensor& logits);

/// The momentum (EMA) update of a slow copy, parameter by parameter, without gradients:
/// target ← m·target + (1 − m)·online (MoCo's key encoder, BYOL's target network). Throws
/// c10::Error naming `who` when the two lists differ in length.
void ema_update(const std::vector<torch::Tensor>& online, const std::vector<torch::Tensor>& target,
                double m, const char* who);

}  // namespace contra::method
