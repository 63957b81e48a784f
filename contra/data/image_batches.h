#pragma once
/// Training batches of augmented views from an in-memory image set, and the normalisation shared by
/// training, probes and fine-tuning.
///
///   ImageBatchSource source(train, stats, views);
///   method::Batch b = source.batch(i, 256, seed);   // b.views = {view 1, view 2}, labels, index
///
/// Batch i is a pure function of (i, batch size, seed): item order is a seeded permutation per
/// epoch (batches run across epoch boundaries without dropping images), and the views of batch i
/// are drawn with the seed mix(seed, i). So a resumed run sees exactly the batches of an
/// uninterrupted one, and the loader threads may build batches in any order.
#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "contra/data/images.h"
#include "contra/method/method.h"
#include "contra/transforms/image_views.h"

namespace contra::data {

/// Per-channel mean and standard deviation of pixel values in [0, 1].
struct ChannelStats {
  std::vector<double> mean, std;
};

/// Mean and standard deviation per channel of uint8 images (N, C, H, W), on the [0, 1] scale.
ChannelStats channel_stats(const torch::Tensor& images);

/// uint8 (N, C, H, W) → float in [0, 1].
torch::Tensor to_unit_float(const torch::Tensor& images);

/// (x − mean_c) / std_c for float images (N, C, H, W) in [0, 1]. Throws DataError when the channel
/// count differs from the stats'.
torch::Tensor normalize_images(const torch::Tensor& images, const ChannelStats& stats);

/// Items of batch i over a set of n: position p = i·batch_size + j of an endless stream whose epoch
/// e = p / n is a permutation of 0..n−1 seeded by (seed, e). DataError when n is 0.
torch::Tensor epoch_indices(std::int64_t n, std::int64_t i, std::int64_t batch_size,
                            std::uint64_t seed);

/// This rank's share of batch i in a run of `ranks` processes: items [rank·B, (rank+1)·B) of the
/// global batch epoch_indices(n, i, ranks·B, seed) — a distributed sampler: the ranks' shards are
/// disjoint, together they are the global batch, each epoch is a fresh permutation and every rank
/// has the same number of batches. ranks = 1 is epoch_indices itself.
torch::Tensor shard_indices(std::int64_t n, std::int64_t i, std::int64_t batch_size,
                            std::uint64_t seed, std::int64_t rank, std::int64_t ranks);

class ImageBatchSource {
 public:
  ImageBatchSource(ImageDataset train, ChannelStats stats, transforms::ImageViewsConfig views);
  /// Batch i: `views` normalised augmented views (each (B, C, size, size) float), `input` = the
  /// first view, `labels` (-1 for unlabelled images) and `index` (positions in the set).
  /// In a distributed run, rank `rank` of `ranks` gets its shard (shard_indices) with its own
  /// augmentation draws.
  method::Batch batch(std::int64_t i, std::int64_t batch_size, std::uint64_t seed,
                      std::int64_t rank = 0, std::int64_t ranks = 1) const;
  /// The views of the items `index` (B) int64, drawn with `batch_seed` (views then small views,
  /// normalised), with their labels and index. batch() is batch_of(its indices, its seed); samplers
  /// of their own (DeepCluster's uniform-over-clusters) use it directly.
  method::Batch batch_of(const torch::Tensor& index, std::uint64_t batch_seed) const;
  /// Dataset positions of batch i (B) int64.
  torch::Tensor indices(std::int64_t i, std::int64_t batch_size, std::uint64_t seed,
                        std::int64_t rank = 0, std::int64_t ranks = 1) const;
  std::int64_t size() const { return train_.size(); }

 private:
  ImageDataset train_;
  ChannelStats stats_;
  transforms::ImageViewsConfig views_;
  transforms::ImageTransformPtr chain_, small_chain_;
};

}  // namespace contra::data
