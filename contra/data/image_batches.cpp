#include "contra/data/image_batches.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/data/sentences.h"

namespace contra::data {

ChannelStats channel_stats(const torch::Tensor& images) {
  check<DataError>(images.defined() && images.dim() == 4 && images.size(0) > 0,
                   "channel_stats: expected non-empty images (N, C, H, W)");
  torch::Tensor x =
      images.to(torch::kDouble).div_(255.0).transpose(0, 1).reshape({images.size(1), -1});
  ChannelStats s;
  torch::Tensor mean = x.mean(1), std = x.std(1, /*unbiased=*/false);
  for (int64_t c = 0; c < images.size(1); ++c) {
    s.mean.push_back(mean[c].item<double>());
    s.std.push_back(std::max(std[c].item<double>(), 1e-6));
  }
  return s;
}

torch::Tensor to_unit_float(const torch::Tensor& images) {
  return images.to(torch::kFloat).div_(255.0f);
}

torch::Tensor normalize_images(const torch::Tensor& images, const ChannelStats& stats) {
  const auto channels = static_cast<int64_t>(stats.mean.size());
  check<DataError>(images.dim() == 4 && images.size(1) == channels,
                   "normalize_images: images have {} channels, the normalisation has {}",
                   images.dim() == 4 ? images.size(1) : -1, channels);
  auto opts = torch::TensorOptions().dtype(images.scalar_type()).device(images.device());
  torch::Tensor mean = torch::tensor(stats.mean, torch::kDouble).to(opts).view({1, channels, 1, 1});
  torch::Tensor std = torch::tensor(stats.std, torch::kDouble).to(opts).view({1, channels, 1, 1});
  return (images - mean) / std;
}

ImageBatchSource::ImageBatchSource(ImageDataset train, ChannelStats stats,
                                   transforms::ImageViewsConfig views)
    : train_(std::move(train)), stats_(std::move(stats)), views_(std::move(views)) {
  check<DataError>(train_.size() > 0, "image batches: the training set is empty");
  check<DataError>(static_cast<int64_t>(stats_.mean.size()) == train_.images.size(1),
                   "image batches: {} channel statistics for images of {} channels",
                   stats_.mean.size(), train_.images.size(1));
  chain_ = views_.build();
  if (views_.small_views > 0) small_chain_ = views_.small_view().build();
}

torch::Tensor epoch_indices(std::int64_t n, std::int64_t i, std::int64_t batch_size,
                            std::uint64_t seed) {
  check<DataError>(n > 0, "batches: the data set is empty");
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(batch_size));
  int64_t pos = i * batch_size;
  int64_t epoch = -1;
  torch::Tensor perm;
  for (int64_t j = 0; j < batch_size; ++j, ++pos) {
    const int64_t e = pos / n;
    if (e != epoch) {
      epoch = e;
      auto gen = at::make_generator<at::CPUGeneratorImpl>(
          mix_seed(seed, static_cast<uint64_t>(e), 0x1a6e));
      perm = torch::randperm(n, gen, torch::TensorOptions().dtype(torch::kLong));
    }
    out.push_back(perm.data_ptr<int64_t>()[pos % n]);
  }
  return torch::tensor(out, torch::kLong);
}

torch::Tensor shard_indices(std::int64_t n, std::int64_t i, std::int64_t batch_size,
                            std::uint64_t seed, std::int64_t rank, std::int64_t ranks) {
  check<ConfigError>(ranks >= 1 && rank >= 0 && rank < ranks, "batches: rank {} outside [0, {})",
                     rank, ranks);
  if (ranks == 1) return epoch_indices(n, i, batch_size, seed);
  return epoch_indices(n, i, batch_size * ranks, seed).narrow(0, rank * batch_size, batch_size);
}

torch::Tensor ImageBatchSource::indices(std::int64_t i, std::int64_t batch_size, std::uint64_t seed,
                                        std::int64_t rank, std::int64_t ranks) const {
  return shard_indices(train_.size(), i, batch_size, seed, rank, ranks);
}

method::Batch ImageBatchSource::batch(std::int64_t i, std::int64_t batch_size, std::uint64_t seed,
                                      std::int64_t rank, std::int64_t ranks) const {
  uint64_t batch_seed = mix_seed(seed, static_cast<uint64_t>(i), 0x7e5);
  if (ranks > 1) batch_seed = mix_seed(batch_seed, static_cast<uint64_t>(rank), 0x5a4d);
  return batch_of(indices(i, batch_size, seed, rank, ranks), batch_seed);
}

method::Batch ImageBatchSource::batch_of(const torch::Tensor& index,
                                         std::uint64_t batch_seed) const {
  check<DataError>(index.numel() == 0 ||
                       (index.min().item<int64_t>() >= 0 && index.max().item<int64_t>() < size()),
                   "image batches: an item index outside [0, {})", size());
  torch::Tensor images = to_unit_float(train_.images.index_select(0, index));
  method::Batch b;
  for (int64_t v = 0; v < views_.views; ++v) {
    torch::Tensor view = chain_->apply(images, mix_seed(batch_seed, static_cast<uint64_t>(v)));
    b.views.push_back(normalize_images(view, stats_));
  }
  for (int64_t v = 0; v < views_.small_views; ++v) {
    torch::Tensor view = small_chain_->apply(
        images, mix_seed(batch_seed, static_cast<uint64_t>(views_.views + v), 0x5a11));
    b.views.push_back(normalize_images(view, stats_));
  }
  b.input = b.views.front();
  b.labels = train_.labels.index_select(0, index);
  b.index = index;
  return b;
}

}  // namespace contra::data
