#pragma once
/// Linear (softmax-regression) and one-hidden-layer probes on frozen features — the evaluation
/// protocol of CPC (Oord et al. 2018, arXiv:1807.03748, §3.1: phone and speaker classification).
#include <cstdint>
#include <string>

#include <c10/core/Device.h>
#include <torch/arg.h>
#include <torch/types.h>

namespace contra::eval {

struct LinearProbeOptions {
  /// Passes over the training set (Adam) or L-BFGS iterations.
  TORCH_ARG(int64_t, epochs) = 100;
  /// Minibatch size for Adam; 0 = full batch. L-BFGS is always full batch.
  TORCH_ARG(int64_t, batch_size) = 0;
  TORCH_ARG(double, lr) = 1e-2;
  /// L2 penalty on the weights (not the biases): λ/2 · ‖W‖² added to the loss.
  TORCH_ARG(double, weight_decay) = 0.0;
  /// "adam" or "lbfgs".
  TORCH_ARG(std::string, optimizer) = "adam";
  /// 0: softmax regression; > 0: one hidden ReLU layer of this width (CPC's MLP probe).
  TORCH_ARG(int64_t, hidden) = 0;
  /// Seeds the MLP's initial weights and the minibatch order (the linear probe starts at zero).
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(c10::Device, device) = c10::Device(c10::kCPU);
};

/// What a probe reports (no confusion matrix: accuracies, sizes, chance level, final loss).
struct ProbeResult {
  double train_accuracy = 0;
  double test_accuracy = 0;
  /// Test accuracy of always answering the most frequent training class.
  double chance_accuracy = 0;
  /// Mean cross-entropy on the training set after the last epoch (without the penalty).
  double train_loss = 0;
  int64_t classes = 0;
  int64_t dim = 0;
  int64_t train_size = 0;
  int64_t test_size = 0;
};

/// Trains a softmax-regression (or one-hidden-layer MLP) classifier on frozen features and reports
/// train/test accuracy. Features are standardised with the training set's mean and standard
/// deviation.
///   p(y | x) = softmax(W · (x − μ)/σ + b)      (linear)
///   p(y | x) = softmax(W₂ · relu(W₁ · (x − μ)/σ + b₁) + b₂)   (hidden > 0)
/// Loss: mean cross-entropy + weight_decay/2 · Σ‖W‖².
///
/// train_x (N, D) / test_x (M, D) float, train_y (N) / test_y (M) int64 class ids in [0, classes).
/// Throws ConfigError for bad options (epochs < 1, lr <= 0, weight_decay < 0, unknown optimizer,
/// batch_size < 0, hidden < 0) and DataError for mismatched shapes, empty sets, negative labels or
/// non-finite features.
///
///   auto r = linear_probe(train_x, train_y, test_x, test_y, LinearProbeOptions().epochs(50));
///   fmt::print("phone accuracy {:.1f}%\n", 100 * r.test_accuracy);
ProbeResult linear_probe(const torch::Tensor& train_x, const torch::Tensor& train_y,
                         const torch::Tensor& test_x, const torch::Tensor& test_y,
                         const LinearProbeOptions& options = {});

}  // namespace contra::eval
