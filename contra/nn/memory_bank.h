#pragma once
/// Instance-discrimination memory bank (Wu, Xiong, Yu & Lin 2018, "Unsupervised Feature Learning
/// via Non-Parametric Instance Discrimination", arXiv:1805.01978; the momentum update of the
/// official lemniscate code):
///
///   one entry v_i per dataset item, (size, dim);   after a step:  v_i ← normalize(m·v_i + (1 −
///   m)·f_i)
///
/// Entries start uniform in [−a, a] with a = √(3/dim) (so E‖v‖² = 1), as in lemniscate's
/// NCEAverage. The bank is a buffer: it moves with `to(device)` and is saved with checkpoints.
/// `get` and `update` take the dataset indices of the batch (Batch::index). Throws DataError for
/// indices out of range or repeated within one update, c10::Error for shape mismatches,
/// ConfigError for bad options.
///
///   contra::nn::MemoryBank bank(contra::nn::MemoryBankOptions(dataset_size, 128));
///   auto negatives = bank->memory.index_select(0, sampled);   // (K, 128)
///   bank->update(batch.index, features.detach());
#include <cstdint>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace contra::nn {

struct MemoryBankOptions {
  MemoryBankOptions(int64_t size, int64_t dim) : size_(size), dim_(dim) {}
  /// Number of entries: the dataset size (> 0).
  TORCH_ARG(int64_t, size);
  /// Feature dimension (> 0).
  TORCH_ARG(int64_t, dim);
  /// Momentum m in [0, 1): weight of the old entry (0.5 in Wu et al.'s code; 0 replaces it).
  TORCH_ARG(double, momentum) = 0.5;
};

class MemoryBankImpl : public torch::nn::Cloneable<MemoryBankImpl> {
 public:
  explicit MemoryBankImpl(MemoryBankOptions options);
  void reset() override;
  /// Entries (B, dim) of the items `indices` (B) int64; no gradient.
  torch::Tensor get(const torch::Tensor& indices) const;
  /// Momentum update of the entries `indices` (B) with features (B, dim); no gradient.
  void update(const torch::Tensor& indices, const torch::Tensor& features);

  MemoryBankOptions options;
  torch::Tensor memory;  // (size, dim)

 private:
  void check_indices(const torch::Tensor& indices, bool unique) const;
};
TORCH_MODULE(MemoryBank);

}  // namespace contra::nn
