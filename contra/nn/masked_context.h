#pragma once
/// The PixelCNN-style context network of CPC on images: masked convolutions over a grid of patch
/// vectors, each output row seeing only the rows at and above it.
#include <cstdint>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace contra::nn {

struct MaskedContextOptions {
  /* implicit */ MaskedContextOptions(int64_t features) : features_(features) {}
  /// D: channels of the patch grid in and of the context grid out (the blocks are residual).
  TORCH_ARG(int64_t, features);
  /// Bottleneck channels inside each block (paper 256).
  TORCH_ARG(int64_t, channels) = 256;
  /// Residual blocks (paper 5).
  TORCH_ARG(int64_t, blocks) = 5;
  /// Odd kernel width k: each block mixes k columns and k/2 + 1 rows (the row itself and k/2
  /// above); paper 3.
  TORCH_ARG(int64_t, kernel) = 3;
};

/// Context network of CPC v2 (Hénaff et al. 2019, arXiv:1905.09272, the pixelCNN() of its
/// appendix; van den Oord et al. 2016 for masked convolutions). Each of `blocks` residual blocks:
///   h = ReLU(Conv_{1×1}(x));  h = Conv_{1×k}(h) (same);  h = top-pad k/2 rows, Conv_{(k/2+1)×1}(h)
///   (valid);  x ← x + Conv_{1×1}(ReLU(h)),
/// then c = ReLU(x). The (1×k, then (k/2+1)×1 padded at the top only) pair is a k×k convolution
/// whose rows below the centre are masked out: output row i depends on input rows i − k/2 .. i,
/// and after B blocks on rows i − B·(k/2) .. i — never on a row below i, which is what lets row i
/// predict the rows below it. Columns are unrestricted (the whole width of the rows above is
/// context).
///
/// Input z (N, D, rows, cols) float; output c (N, D, rows, cols). Throws ConfigError for
/// non-positive sizes or an even kernel; c10::Error for a wrong input.
///
///   MaskedContext ctx(MaskedContextOptions(128).channels(256).blocks(5));
///   auto c = ctx->forward(z);   // (B, 128, 6, 6); c[:, :, i] depends only on z[:, :, :i + 1]
class MaskedContextImpl : public torch::nn::Cloneable<MaskedContextImpl> {
 public:
  explicit MaskedContextImpl(MaskedContextOptions options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& z);
  /// Rows above a position that reach its output: blocks · (kernel / 2).
  int64_t rows_seen() const { return options.blocks() * (options.kernel() / 2); }

  MaskedContextOptions options;
  /// 4 convolutions per block: in (1×1), horizontal (1×k), vertical ((k/2+1)×1), out (1×1).
  torch::nn::ModuleList convs{nullptr};
};
TORCH_MODULE(MaskedContext);

}  // namespace contra::nn
