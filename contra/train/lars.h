#pragma once
/// LARS, layer-wise adaptive rate scaling (You, Gitman & Ginsburg 2017, arXiv:1708.03888), in the
/// form SimCLR uses it (Chen et al. 2020, the reference TF `LARSOptimizer`; the same as the PyTorch
/// port of solo-learn and lightly). For each parameter p with gradient g, at learning rate lr:
///
///   g  ← g + wd·p                                     (weight decay)
///   r  = η·‖p‖ / ‖g‖, or 1 when ‖p‖ = 0 or ‖g‖ = 0    (trust ratio; ‖·‖ = L2 norm of the tensor)
///   v  ← μ·v + lr·r·g                                  (momentum buffer, v = 0 before step 1)
///   p  ← p − v
///
/// With `exclude_bias_and_norm` (default), parameters with dim ≤ 1 (biases, BatchNorm γ and β) get
/// neither the decay nor the adaptation: v ← μ·v + lr·g, plain momentum SGD, as in SimCLR.
///
/// A `torch::optim::Optimizer`: options per parameter group (`LarsOptions`, whose lr the trainer's
/// schedule sets), the momentum buffer per parameter (`LarsParamState`), and `save`/`load` through
/// LibTorch's optimizer serialization, so the buffer survives a checkpoint resume. As with torch's
/// own optimizers, `load` restores the per-parameter state; the options are the constructor's.
///
///   Lars opt(model->parameters(), LarsOptions(0.3 * batch / 256).weight_decay(1e-6));
#include <memory>
#include <utility>
#include <vector>

#include <torch/arg.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/serialize.h>
#include <torch/serialize/archive.h>
#include <torch/types.h>

namespace contra::train {

struct LarsOptions : public torch::optim::OptimizerCloneableOptions<LarsOptions> {
  LarsOptions(double lr);  // NOLINT(google-explicit-constructor): torch's loader builds it from 0
  TORCH_ARG(double, lr);
  TORCH_ARG(double, momentum) = 0.9;              // μ
  TORCH_ARG(double, weight_decay) = 0.0;          // wd (not applied to excluded parameters)
  TORCH_ARG(double, eta) = 0.001;                 // trust coefficient η
  TORCH_ARG(bool, exclude_bias_and_norm) = true;  // dim ≤ 1: plain momentum SGD, no decay

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override;
  void set_lr(const double lr) override;
  ~LarsOptions() override = default;
};

struct LarsParamState : public torch::optim::OptimizerCloneableParamState<LarsParamState> {
  TORCH_ARG(torch::Tensor, momentum_buffer);  // v

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  ~LarsParamState() override = default;
};

class Lars : public torch::optim::Optimizer {
 public:
  /// Throws ConfigError for lr < 0, momentum < 0, weight_decay < 0 or eta ≤ 0.
  Lars(std::vector<torch::optim::OptimizerParamGroup> param_groups, LarsOptions defaults);
  Lars(std::vector<torch::Tensor> params, LarsOptions defaults);

  torch::Tensor step(LossClosure closure = nullptr) override;

  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  /// The momentum buffer of `param`, or an undefined tensor before its first step.
  torch::Tensor momentum_buffer(const torch::Tensor& param) const;

 private:
  template <typename Self, typename Archive>
  static void serialize(Self& self, Archive& archive) {
    torch::optim::serialize<LarsParamState, LarsOptions>(archive, self);
  }
};

}  // namespace contra::train
