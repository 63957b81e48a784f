#pragma once
/// MoCo's queue of negative keys (He, Fan, Wu, Xie & Girshick 2019, "Momentum Contrast for
/// Unsupervised Visual Representation Learning", arXiv:1911.05722; semantics of the official
/// facebookresearch/moco `_dequeue_and_enqueue`):
///
/// - a (dim, K) buffer `queue` of random Gaussian columns, L2-normalised at initialisation;
/// - a pointer `ptr` (a (1) int64 buffer) to the oldest column;
/// - `dequeue_and_enqueue(keys)` writes the B new keys (B, dim) over the B oldest columns and moves
/// the
///   pointer by B. The official code asserts K % B == 0; here the remainder is supported: writes
///   wrap around the end of the buffer (columns ptr, ptr+1, ... mod K), so any B <= K works and for
///   K % B == 0 the result is the official one. B > K throws ConfigError.
/// Keys are stored as given (detached): MoCo's keys are already normalised.
///
/// Both buffers belong to the module, so they move with `to(device)` and are saved and restored
/// with the model's checkpoint. The update runs on the buffers' device without synchronising with
/// the host.
///
///   contra::nn::KeyQueue queue(contra::nn::KeyQueueOptions(128, 65536));
///   auto loss = contra::loss::functional::info_nce_keys(q, k, queue->negatives(), opts);
///   queue->dequeue_and_enqueue(k);
#include <cstdint>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace contra::nn {

struct KeyQueueOptions {
  KeyQueueOptions(int64_t dim, int64_t size = 65536) : dim_(dim), size_(size) {}
  /// Key dimension (> 0); MoCo uses 128.
  TORCH_ARG(int64_t, dim);
  /// Number of keys K (> 0); MoCo uses 65536.
  TORCH_ARG(int64_t, size);
};

class KeyQueueImpl : public torch::nn::Cloneable<KeyQueueImpl> {
 public:
  explicit KeyQueueImpl(KeyQueueOptions options);
  /// Fresh random unit columns and pointer 0 (on the device of the existing buffers, if any).
  void reset() override;
  /// Replaces the oldest B columns by keys (B, dim), B <= K; no gradient flows.
  void dequeue_and_enqueue(const torch::Tensor& keys);
  /// The queue as (K, dim) negatives (a view of the buffer).
  torch::Tensor negatives() const { return queue.t(); }
  /// Index of the oldest column (reads the pointer back to the host).
  int64_t pointer() const;

  KeyQueueOptions options;
  torch::Tensor queue;  // (dim, K)
  torch::Tensor ptr;    // (1) int64
};
TORCH_MODULE(KeyQueue);

}  // namespace contra::nn
