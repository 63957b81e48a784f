#pragma once
/// Instance discrimination with a memory bank (Wu, Xiong, Yu & Lin 2018, "Unsupervised Feature
/// Learning via Non-Parametric Instance Discrimination", arXiv:1805.01978; the official lemniscate
/// code): every training image is its own class, represented by one entry of a memory bank.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include "contra/method/image_common.h"
#include "contra/method/method.h"
#include "contra/nn/image_encoder.h"
#include "contra/nn/memory_bank.h"

namespace contra::method {

/// The `method:` section of `name: instance_discrimination`. The paper's ImageNet values: a 128-d
/// embedding, τ = 0.07, NCE with m = 4096 noise samples, bank momentum 0.5.
///
///   method:
///     name: instance_discrimination
///     encoder: {type: small_cnn, width: 32}
///     embedding: 128
///     loss: nce            # or softmax: the full non-parametric softmax over the bank
///     negatives: 4096
struct InstanceDiscriminationConfig {
  nn::ImageEncoderConfig encoder;
  int64_t embedding = 128;
  double temperature = 0.07;
  std::string loss = "nce";
  int64_t negatives = 4096;
  double momentum = 0.5;
  /// Entries of the memory bank; 0 = the training set's size (the recipe calls set_bank_size).
  int64_t bank_size = 0;
  int64_t online_probe_classes = 0;
  template <class V>
  void visit(V& v) {
    v("encoder", encoder, "the backbone f(·)");
    v("embedding", embedding, "size of the L2-normalised embedding and of the bank entries (> 0)");
    v("temperature", temperature, "τ of exp(vᵀf/τ) (> 0; paper 0.07)");
    v("loss", loss, "nce (m noise samples from the bank) | softmax (the whole bank)");
    v("negatives", negatives, "nce: noise samples m per image (>= 1; paper 4096)");
    v("momentum", momentum, "bank update v ← normalize(m·v + (1 − m)·f), m in [0, 1)");
    v("bank_size", bank_size, "memory-bank entries (0 = the training set size)");
    v("online_probe_classes", online_probe_classes,
      "0 = off; C = train a linear classifier on detached features alongside (online_acc)");
  }
  void validate() const;
};

/// Instance discrimination. For a batch of images x_i (one augmented view each) with dataset
/// indices i: f_i = normalize(W·h(x_i)) (128-d), the positive is the item's own bank entry v_i
/// (detached), scores s_ij = v_jᵀ f_i / τ.
///   softmax (paper eq. 2):  ℓ = −log exp(s_ii) / Σ_{j=1..n} exp(s_ij)   over the whole bank;
///   nce (eq. 4–6): P(j|f_i) = exp(s_ij) / Z, noise P_n = 1/n, m noise entries j_1..j_m drawn
///     uniformly from the bank per image, h(j, f_i) = P(j|f_i) / (P(j|f_i) + m·P_n),
///     ℓ = −log h(i, f_i) − Σ_k log(1 − h(j_k, f_i))  (mean over the batch) — the nce loss of
///     docs/losses.md with s = log P, log q = −log n, ν = m. Z = n · mean(exp(s)) over the first
///     batch's positive and noise scores (lemniscate's NCEAverage), then a constant (a buffer:
///     checkpoints keep it).
/// After the optimizer step the batch's entries move: v_i ← normalize(m·v_i + (1 − m)·f_i), with
/// the f_i of the forward pass (an index that occurs twice is updated twice, in batch order).
///
/// Distributed: every rank holds the whole bank; the batch's indices and features are gathered
/// from all ranks before the update, so the banks stay identical; Z is estimated over the global
/// first batch; the noise indices are drawn for the global batch from a generator seeded by
/// (noise seed, step, micro-batch) and each rank takes its rows — so W ranks × B train like one
/// process × W·B. Resumed runs draw the same noise (the seed and step are buffers).
///
/// Batch: `input` (B, C, H, W) and `index` (B) int64 (dataset positions); `labels` only for the
/// online probe. Metrics: instance_loss, pos_sim (mean v_iᵀf_i), nce: log_z; softmax: instance_acc
/// (arg-max over the bank is the item itself); probe_loss, online_acc with the probe.
/// features(x, "encoder") = h(x) (what probes use); "embedding" = f(x).
/// Throws ConfigError for a bad config, DataError for a batch without `index` or with indices
/// outside the bank.
///
///   InstanceDiscrimination m(config);
///   m.set_bank_size(train.size());               // when config.bank_size is 0
///   StepOutput out = m.step(batch);  out.loss.backward();  opt.step();  m.after_optimizer_step(k);
class InstanceDiscrimination : public Method {
 public:
  explicit InstanceDiscrimination(InstanceDiscriminationConfig config);
  StepOutput step(const Batch& batch) override;
  void after_optimizer_step(std::int64_t step) override;
  torch::Tensor features(const torch::Tensor& input, const std::string& kind) override;
  std::string name() const override { return "instance_discrimination"; }
  const InstanceDiscriminationConfig& config() const { return config_; }
  /// ConfigError unless views >= 1 (only the first is used), a batch of >= 2 (BatchNorm) and, once
  /// the bank size is known, no more than the bank's entries.
  void check_batch(int64_t batch_size, int64_t views) const;
  /// The training set's size: makes a fresh bank of `size` entries when config.bank_size is 0
  /// (ConfigError when the config gives another size). Call before loading a checkpoint to train
  /// on; probes may load a checkpoint without it (the archive replaces the bank).
  void set_bank_size(int64_t size);
  /// Entries n of the bank; 0 while unknown.
  int64_t bank_size() const { return bank_size_; }
  /// The bank's entries (n, embedding) — the training features of the bank kNN (Wu et al. §3.4).
  torch::Tensor bank_entries() const { return bank->memory; }
  /// NCE noise indices of the global batch of `rows` items at optimizer step `step`, micro-batch
  /// `micro`: (rows, negatives) int64, uniform over the bank, a pure function of the noise seed.
  torch::Tensor noise_indices(int64_t step, int64_t micro, int64_t rows) const;
  /// The momentum update of the entries `index` (N) with features (N, D) — duplicates in order.
  void update_bank(const torch::Tensor& index, const torch::Tensor& features);

  torch::nn::AnyModule encoder;
  torch::nn::Linear head{nullptr};
  nn::MemoryBank bank{nullptr};
  OnlineProbe probe{nullptr};
  /// Z of the NCE loss; < 0 until the first batch estimates it.
  torch::Tensor z;
  /// Seed of the noise draws (drawn once from the global generator) and optimizer steps done.
  torch::Tensor noise_seed, steps_done;

 private:
  InstanceDiscriminationConfig config_;
  int64_t bank_size_ = 0;
  int64_t micro_ = 0;  // micro-batches since the last optimizer step
  // This step's micro-batches on this rank: indices (B), features (B, D); gathered at the update.
  std::vector<torch::Tensor> pending_index_, pending_features_;
};

}  // namespace contra::method
