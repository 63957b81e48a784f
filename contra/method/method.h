#pragma once
/// The method interface: a self-supervised method is a composition (encoder + heads + loss + views)
/// that the trainer drives without knowing which method it is (DESIGN.md §1).
///
/// A Method is a torch::nn::Module, so its parameters, buffers (queues, memory banks, EMA targets)
/// and sub-modules are saved and restored by checkpoints through the ordinary module archive.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

namespace contra::method {

/// One minibatch as the loader delivers it. Unused fields stay undefined.
struct Batch {
  /// Audio (B, 1, samples), images (B, C, H, W) or the first view.
  torch::Tensor input;
  /// Further views of the same items (SimCLR/MoCo second view, multi-crop).
  std::vector<torch::Tensor> views;
  /// (B) int64: speaker or class ids (same_speaker negatives, supervised losses, probes).
  torch::Tensor labels;
  /// (B) int64: index of each item in its dataset (memory banks).
  torch::Tensor index;
  /// Anything else a method needs by name (e.g. "text_tokens").
  std::map<std::string, torch::Tensor> extra;

  /// Moves every defined tensor to `device` (non-blocking when pinned).
  Batch to(const torch::Device& device) const;
};

/// What one forward pass returns: the scalar loss to back-propagate and metrics to log.
struct StepOutput {
  torch::Tensor loss;
  /// Plain numbers (accuracy per prediction step, positive/negative similarity...), already
  /// detached.
  std::map<std::string, double> metrics;
};

class Method : public torch::nn::Module {
 public:
  ~Method() override = default;
  /// Forward + loss (+ metrics). No backward, no optimizer step.
  virtual StepOutput step(const Batch& batch) = 0;
  /// Called after each optimizer step: EMA targets, queues, prototypes, memory banks.
  virtual void after_optimizer_step(std::int64_t step) {}
  /// Frozen representation used by probes, embed and export. For sequence models (B, T, C);
  /// otherwise (B, C). `kind` selects among a method's representations ("context", "encoder", ...);
  /// an unknown kind throws ConfigError listing the valid ones.
  virtual torch::Tensor features(const torch::Tensor& input, const std::string& kind) = 0;
  /// The parameters the optimizer updates (default: all trainable parameters).
  virtual std::vector<torch::Tensor> trainable_parameters() { return parameters(true); }
  /// Registry name ("cpc_audio", "simclr", ...).
  virtual std::string name() const = 0;
};

}  // namespace contra::method
