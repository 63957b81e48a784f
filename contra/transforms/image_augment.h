#pragma once
/// Image augmentations for contrastive learning (SimCLR, MoCo, SwAV, CutMix, RandAugment) on whole
/// batches with per-sample random parameters.
///
/// Contract of every transform: input (N, C, H, W) float in [0, 1] with C = 1 or 3, on any device;
/// output the same dtype and device, values in [0, 1]. Shapes stay, except for RandomResizedCrop
/// (→ (N, C, size, size)).
///
/// Seeding rule: transforms are stateless; `apply(images, seed)` draws every random number from
/// SplitMix64 streams on the CPU — sample i of a transform reads the stream seeded with
/// mix_seed(seed, i), a Compose gives its step k the seed mix_seed(seed, k, 1) and a MultiView its
/// view v the seed mix_seed(seed, v, 2). So the output depends only on (seed, input), never on the
/// thread count or on other calls, and any loader thread can run any batch. Only the resulting
/// parameter tensors move to the input's device.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/arg.h>
#include <torch/types.h>

namespace contra::transforms {

/// A batch image augmentation: (N, C, H, W) float in [0, 1] → augmented batch, reproducible from
/// `seed` (see the seeding rule above).
class ImageTransform {
 public:
  virtual ~ImageTransform() = default;
  virtual torch::Tensor apply(const torch::Tensor& images, uint64_t seed) const = 0;
  torch::Tensor operator()(const torch::Tensor& images, uint64_t seed) const {
    return apply(images, seed);
  }
};
using ImageTransformPtr = std::shared_ptr<const ImageTransform>;

// ---------------------------------------------------------------------------------------------
// Geometric

struct RandomResizedCropOptions {
  explicit RandomResizedCropOptions(int64_t size = 224) : size_(size) {}
  /// Output side (square).
  TORCH_ARG(int64_t, size);
  /// Fraction of the image area the crop covers, U[scale_min, scale_max].
  TORCH_ARG(double, scale_min) = 0.08;
  TORCH_ARG(double, scale_max) = 1.0;
  /// Aspect ratio w/h, log-uniform in [ratio_min, ratio_max].
  TORCH_ARG(double, ratio_min) = 3.0 / 4.0;
  TORCH_ARG(double, ratio_max) = 4.0 / 3.0;
};

/// Random crop resized to size × size (Szegedy et al. 2015; torchvision's RandomResizedCrop):
/// box parameters sampled as torchvision does (10 attempts, then the centre crop clamped to the
/// ratio range), then one batched bilinear grid_sample (align_corners = false, border padding) with
/// a per-sample affine grid. No antialiasing when shrinking (torchvision's tensor path before 0.17
/// did not either). Throws ConfigError for size <= 0, scale outside (0, 1] or min > max.
///   RandomResizedCrop crop(RandomResizedCropOptions(28).scale_min(0.2));
///   auto views = crop(images, /*seed=*/3);   // (N, C, 28, 28)
class RandomResizedCrop : public ImageTransform {
 public:
  explicit RandomResizedCrop(RandomResizedCropOptions options);
  torch::Tensor apply(const torch::Tensor& images, uint64_t seed) const override;
  /// The box (top, left, height, width) in pixels sampled for one image, as torchvision's
  /// get_params.
  std::array<int64_t, 4> sample_box(int64_t height, int64_t width, uint64_t sample_seed) const;
  const RandomResizedCropOptions& options() const { return options_; }

 private:
  RandomResizedCropOptions options_;
};

/// Flips each image left-right with probability p. Throws ConfigError for p outside [0, 1].
class RandomHorizontalFlip : public ImageTransform {
 public:
  explicit RandomHorizontalFlip(double p = 0.5);
  torch::Tensor apply(const torch::Tensor& images, uint64_t seed) const override;

 private:
  double p_;
};

struct RandomAffineOptions {
  /// Rotation angle U[−degrees, degrees] (counter-clockwise).
  TORCH_ARG(double, degrees) = 0.0;
  /// Translation U[−translate, translate] · width (x) and · height (y).
  TORCH_ARG(double, translate) = 0.0;
  /// Isotropic scale U[scale_min, scale_max].
  TORCH_ARG(double, scale_min) = 1.0;
  TORCH_ARG(double, scale_max) = 1.0;
  /// Probability of transforming an image at all.
  TORCH_ARG(double, p) = 1.0;
};

/// Random rotation / translation / scaling about the image centre (torchvision's RandomAffine
/// without shear), bilinear, zero fill outside the image. Throws ConfigError for degrees < 0,
/// translate outside [0, 1], scale <= 0 or min > max, p outside [0, 1].
class RandomAffine : public ImageTransform {
 public:
  explicit RandomAffine(RandomAffineOptions options);
  torch::Tensor apply(const torch::Tensor& images, uint64_t seed) const override;

 private:
  RandomAffineOptions options_;
};

// ---------------------------------------------------------------------------------------------
// Photometric

struct ColorJitterOptions {
  /// Brightness factor U[max(0, 1 − b), 1 + b]; 0 = off.
  TORCH_ARG(double, brightness) = 0.0;
  /// Contrast factor U[max(0, 1 − c), 1 + c] (blend with the mean luma); 0 = off.
  TORCH_ARG(double, contrast) = 0.0;
  /// Saturation factor U[max(0, 1 − s), 1 + s] (blend with the luma image); 0 = off.
  TORCH_ARG(double, saturation) = 0.0;
  /// Hue shift U[−h, h] of a full turn, h ≤ 0.5; 0 = off.
  TORCH_ARG(double, hue) = 0.0;
  /// Probability of jittering an image at all (SimCLR/MoCo v2: 0.8).
  TORCH_ARG(double, p) = 1.0;
};

/// torchvision's ColorJitter inside RandomApply(p): the four adjustments in a random order drawn
/// per image, each with its own per-image factor; saturation and hue leave 1-channel images as
/// they are (as torchvision). Throws ConfigError for negative strengths, hue > 0.5, p outside
/// [0, 1].
///   ColorJitter jitter(ColorJitterOptions().brightness(0.4).contrast(0.4).saturation(0.4)
///                          .hue(0.1).p(0.8));
class ColorJitter : public ImageTransform {
 public:
  explicit ColorJitter(ColorJitterOptions options);
  torch::Tensor apply(const torch::Tensor& images, uint64_t seed) const override;

 private:
  ColorJitterOptions options_;
};

/// Replaces an image by its ITU-R 601-2 luma 0.299 R + 0.587 G + 0.114 B (in every channel) with
/// probability p; 1-channel images are unchanged. Throws ConfigError for p outside [0, 1].
class RandomGrayscale : public ImageTransform {
 public:
  explicit RandomGrayscale(double p = 0.2);
  torch::Tensor apply(const torch::Tensor& images, uint64_t seed) const override;

 private:
  double p_;
};

struct GaussianBlurOptions {
  explicit GaussianBlurOptions(int64_t kernel_size = 3) : kernel_size_(kernel_size) {}
  /// Odd kernel side (SimCLR: 10 % of the image side, made odd).
  TORCH_ARG(int64_t, kernel_size);
  /// σ ~ U[sigma_min, sigma_max] per image.
  TORCH_ARG(double, sigma_min) = 0.1;
  TORCH_ARG(double, sigma_max) = 2.0;
  TORCH_ARG(double, p) = 0.5;
};

/// Gaussian blur with a per-image σ (Chen et al. 2020, SimCLR): the separable kernel
/// exp(−x²/2σ²)/Σ of torchvision, reflect padding, as two grouped convolutions over the whole
/// batch (one group per image and channel). Throws ConfigError for an even or non-positive kernel,
/// σ <= 0, min > max, p outside [0, 1].
class GaussianBlur : public ImageTransform {
 public:
  explicit GaussianBlur(GaussianBlurOptions options);
  torch::Tensor apply(const torch::Tensor& images, uint64_t seed) const override;

 private:
  GaussianBlurOptions options_;
};

/// Solarization (BYOL, Grill et al. 2020): x → 1 − x where x ≥ threshold, with probability p.
class Solarize : public ImageTransform {
 public:
  explicit Solarize(double threshold = 0.5, double p = 0.2);
  torch::Tensor apply(const torch::Tensor& images, uint64_t seed) const override;

 private:
  double threshold_, p_;
};

// ---------------------------------------------------------------------------------------------
// Composition, views

/// Applies transforms in order; step k is seeded with mix_seed(seed, k, 1).
class Compose : public ImageTransform {
 public:
  Compose() = default;
  explicit Compose(std::vector<ImageTransformPtr> steps) : steps_(std::move(steps)) {}
  Compose& add(ImageTransformPtr step) {
    steps_.push_back(std::move(step));
    return *this;
  }
  torch::Tensor apply(const torch::Tensor& images, uint64_t seed) const override;
  const std::vector<ImageTransformPtr>& steps() const { return steps_; }

 private:
  std::vector<ImageTransformPtr> steps_;
};

/// n views of the same batch with independent randomness (SimCLR/MoCo: 2). View v uses the seed
/// mix_seed(seed, v, 2).
class MultiView {
 public:
  MultiView(ImageTransformPtr transform, int64_t views = 2);
  std::vector<torch::Tensor> operator()(const torch::Tensor& images, uint64_t seed) const;

 private:
  ImageTransformPtr transform_;
  int64_t views_;
};

struct MultiCropOptions {
  /// SwAV (Caron et al. 2020, arXiv:2006.09882): 2 global 224² crops with scale [0.14, 1] and 6
  /// local 96² crops with scale [0.05, 0.14].
  TORCH_ARG(int64_t, global_crops) = 2;
  TORCH_ARG(int64_t, global_size) = 224;
  TORCH_ARG(double, global_scale_min) = 0.14;
  TORCH_ARG(double, global_scale_max) = 1.0;
  TORCH_ARG(int64_t, local_crops) = 6;
  TORCH_ARG(int64_t, local_size) = 96;
  TORCH_ARG(double, local_scale_min) = 0.05;
  TORCH_ARG(double, local_scale_max) = 0.14;
};

/// Multi-crop: global_crops views (N, C, G, G) then local_crops views (N, C, L, L), each a
/// RandomResizedCrop followed by the shared `after` chain (may be null), independently seeded as
/// MultiView does (view v: mix_seed(seed, v, 2)). Throws ConfigError for bad sizes/scales.
class MultiCrop {
 public:
  explicit MultiCrop(MultiCropOptions options = {}, ImageTransformPtr after = nullptr);
  std::vector<torch::Tensor> operator()(const torch::Tensor& images, uint64_t seed) const;

 private:
  MultiCropOptions options_;
  std::vector<RandomResizedCrop> crops_;
  ImageTransformPtr after_;
};

// ---------------------------------------------------------------------------------------------
// Mixing and policies

struct CutMixResult {
  torch::Tensor images;       // (N, C, H, W) mixed
  torch::Tensor permutation;  // (N) int64: image i received the box from images[permutation[i]]
  double lambda = 1.0;  // kept fraction 1 − box area / (H·W): targets λ·y + (1 − λ)·y[perm]
  std::array<int64_t, 4> box{0, 0, 0, 0};  // top, left, bottom, right (exclusive)
};

/// CutMix (Yun et al. 2019, arXiv:1905.04899), as the authors' code: one λ ~ Beta(α, α) per batch,
/// a box of side √(1 − λ)·(H, W) centred uniformly and clipped to the image, pasted from a random
/// permutation of the batch; λ is then recomputed from the clipped box area. Throws ConfigError
/// for alpha <= 0.
CutMixResult cutmix(const torch::Tensor& images, double alpha, uint64_t seed);

struct RandAugmentOptions {
  /// Ops applied per image, each chosen uniformly with replacement.
  TORCH_ARG(int64_t, n) = 2;
  /// Magnitude 0..30 (torchvision's 31 bins).
  TORCH_ARG(int64_t, m) = 9;
};

/// RandAugment (Cubuk et al. 2020, arXiv:1909.13719) as torchvision's RandAugment on float
/// images: per image, n ops drawn uniformly with replacement from Identity, ShearX, ShearY,
/// TranslateX, TranslateY, Rotate, Brightness, Color, Contrast, Sharpness, Posterize, Solarize,
/// AutoContrast, Equalize, all at magnitude bin m of 31: shear 0.3·m/30 (coefficient), translate
/// (150/331)·side·m/30, rotate 30°·m/30, enhance factors 1 ± 0.9·m/30 (random sign), posterize
/// 8 − round(4m/30) bits, solarize threshold 1 − m/30. Geometric ops are bilinear with zero fill
/// (torchvision's default is nearest). Posterize/Equalize act on the uint8 levels ⌊255.999·x⌋.
/// Throws ConfigError for n < 0 or m outside [0, 30].
class RandAugment : public ImageTransform {
 public:
  explicit RandAugment(RandAugmentOptions options = {});
  torch::Tensor apply(const torch::Tensor& images, uint64_t seed) const override;
  static const std::vector<std::string>& op_names();

 private:
  RandAugmentOptions options_;
};

/// AutoAugment's CIFAR-10 policy (Cubuk et al. 2019, arXiv:1805.09501; 25 sub-policies of two
/// ops, each applied with its probability at its magnitude bin of 10, as torchvision's
/// AutoAugment(AutoAugmentPolicy.CIFAR10) with the op definitions of RandAugment above plus
/// Invert). One sub-policy drawn per image.
class AutoAugmentCifar10 : public ImageTransform {
 public:
  torch::Tensor apply(const torch::Tensor& images, uint64_t seed) const override;
  static int64_t policy_size();
};

// ---------------------------------------------------------------------------------------------
// Recipe config

/// One view of a contrastive recipe: crop → [affine] → flip → colour jitter → grayscale → blur →
/// solarize. The affine step (rotation ±degrees, shift ±translate·side, zero fill) is off in every
/// preset; small-image recipes (MNIST) use it where flips make no sense.
/// (The papers place the flip elsewhere; it commutes with every later step, so the distribution is
/// the same.) Keys as below; `validate()` throws ConfigError naming the key and its range.
struct ImageAugmentConfig {
  int64_t size = 224;
  double scale_min = 0.08, scale_max = 1.0;
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;
  double flip_p = 0.5;
  double affine_p = 0.0;
  double degrees = 0.0, translate = 0.0;
  double jitter_p = 0.8;
  double brightness = 0.4, contrast = 0.4, saturation = 0.4, hue = 0.1;
  double grayscale_p = 0.2;
  double blur_p = 0.5;
  int64_t blur_kernel = 0;  // 0 = 10 % of size, made odd
  double blur_sigma_min = 0.1, blur_sigma_max = 2.0;
  double solarize_p = 0.0;
  double solarize_threshold = 0.5;

  template <class V>
  void visit(V& v) {
    v("size", size, "output side in pixels (> 0)");
    v("scale_min", scale_min, "smallest crop area fraction (0, 1]");
    v("scale_max", scale_max, "largest crop area fraction (0, 1]");
    v("ratio_min", ratio_min, "smallest crop aspect ratio w/h (> 0)");
    v("ratio_max", ratio_max, "largest crop aspect ratio w/h");
    v("flip_p", flip_p, "horizontal flip probability [0, 1]");
    v("affine_p", affine_p, "random rotation/translation probability [0, 1] (after the crop)");
    v("degrees", degrees, "affine: largest rotation in degrees (>= 0)");
    v("translate", translate, "affine: largest shift as a fraction of the side [0, 1]");
    v("jitter_p", jitter_p, "colour jitter probability [0, 1]");
    v("brightness", brightness, "brightness strength (>= 0)");
    v("contrast", contrast, "contrast strength (>= 0)");
    v("saturation", saturation, "saturation strength (>= 0)");
    v("hue", hue, "hue strength [0, 0.5]");
    v("grayscale_p", grayscale_p, "grayscale probability [0, 1]");
    v("blur_p", blur_p, "Gaussian blur probability [0, 1]");
    v("blur_kernel", blur_kernel, "odd blur kernel side, 0 = 10% of size");
    v("blur_sigma_min", blur_sigma_min, "smallest blur sigma (> 0)");
    v("blur_sigma_max", blur_sigma_max, "largest blur sigma");
    v("solarize_p", solarize_p, "solarize probability [0, 1]");
    v("solarize_threshold", solarize_threshold, "solarize threshold [0, 1]");
  }
  void validate() const;
  /// The blur kernel side actually used (resolves 0).
  int64_t kernel_size() const;
  /// The chain; steps with p = 0 (or zero strengths) are left out.
  std::shared_ptr<Compose> build() const;

  /// SimCLR (Chen et al. 2020, arXiv:2002.05709, appendix A, s = 1): crop [0.08, 1], flip 0.5,
  /// jitter (0.8, 0.8, 0.8, 0.2) p 0.8, grayscale 0.2, blur p 0.5 σ [0.1, 2] kernel 10 %.
  static ImageAugmentConfig simclr(int64_t size);
  /// MoCo v1 (He et al. 2019, arXiv:1911.05722): crop [0.2, 1], grayscale 0.2, jitter
  /// (0.4, 0.4, 0.4, 0.4) always, flip 0.5, no blur.
  static ImageAugmentConfig moco_v1(int64_t size);
  /// MoCo v2 (Chen et al. 2020, arXiv:2003.04297): crop [0.2, 1], jitter (0.4, 0.4, 0.4, 0.1)
  /// p 0.8, grayscale 0.2, blur p 0.5 σ [0.1, 2], flip 0.5.
  static ImageAugmentConfig moco_v2(int64_t size);
};

}  // namespace contra::transforms
