#include "contra/transforms/image_augment.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/core/parallel.h"
#include "contra/data/sentences.h"

namespace contra::transforms {

using data::mix_seed;
using data::SplitMix64;

namespace {

constexpr uint64_t kStepSalt = 1;
constexpr uint64_t kViewSalt = 2;

void check_p(double p, const char* component, const char* name) {
  check<ConfigError>(p >= 0 && p <= 1, "{}: {} must be in [0, 1] (got {})", component, name, p);
}

void check_images(const torch::Tensor& x, const char* component) {
  TORCH_CHECK(x.dim() == 4 && (x.size(1) == 1 || x.size(1) == 3), component,
              ": input must be (N, C, H, W) with C = 1 or 3, got ", x.sizes());
  TORCH_CHECK(x.is_floating_point(), component, ": input must be floating point, got ", x.dtype());
}

SplitMix64 sample_rng(uint64_t seed, int64_t i) {
  return SplitMix64(mix_seed(seed, static_cast<uint64_t>(i)));
}

/// Indices (int64, on `device`) of the samples for which `pick` is true.
torch::Tensor index_tensor(const std::vector<int64_t>& idx, const torch::Device& device) {
  return torch::tensor(idx, torch::TensorOptions().dtype(torch::kLong)).to(device);
}

/// Per-sample scalars (n) → (n, 1, 1, 1) tensor of x's dtype on x's device.
torch::Tensor per_sample(const std::vector<double>& v, const torch::Tensor& like) {
  return torch::tensor(v, torch::TensorOptions().dtype(torch::kDouble))
      .to(like.options())
      .view({-1, 1, 1, 1});
}

/// Applies fn to the samples `idx` only (fn gets the (k, C, H, W) subset) and writes them back.
template <class Fn>
torch::Tensor apply_subset(const torch::Tensor& x, const std::vector<int64_t>& idx, Fn&& fn) {
  if (idx.empty()) return x;
  if (static_cast<int64_t>(idx.size()) == x.size(0)) return fn(x);
  auto index = index_tensor(idx, x.device());
  return x.index_copy(0, index, fn(x.index_select(0, index)));
}

torch::Tensor luma(const torch::Tensor& x) {  // (N, 3, H, W) → (N, 1, H, W)
  return (0.299 * x.select(1, 0) + 0.587 * x.select(1, 1) + 0.114 * x.select(1, 2)).unsqueeze(1);
}

torch::Tensor blend(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& ratio) {
  return (ratio * a + (1 - ratio) * b).clamp(0, 1);
}

/// torchvision's _rgb2hsv → (h + shift) mod 1 → _hsv2rgb for one pixel.
inline void shift_hue_pixel(float& r, float& g, float& b, float shift) {
  const float maxc = std::max({r, g, b}), minc = std::min({r, g, b});
  const bool eqc = maxc == minc;
  const float cr = maxc - minc;
  const float s = cr / (eqc ? 1.0f : maxc);
  const float d = eqc ? 1.0f : cr;
  const float rc = (maxc - r) / d, gc = (maxc - g) / d, bc = (maxc - b) / d;
  float h = maxc == r ? bc - gc : (maxc == g ? 2.0f + rc - bc : 4.0f + gc - rc);
  h = std::fmod(h / 6.0f + 1.0f, 1.0f);
  h += shift;
  h -= std::floor(h);
  const float v = maxc;
  const float i = std::floor(h * 6.0f), f = h * 6.0f - i;
  const float p = std::clamp(v * (1.0f - s), 0.0f, 1.0f);
  const float q = std::clamp(v * (1.0f - s * f), 0.0f, 1.0f);
  const float t = std::clamp(v * (1.0f - s * (1.0f - f)), 0.0f, 1.0f);
  switch (static_cast<int>(i) % 6) {
    case 0:
      r = v, g = t, b = p;
      break;
    case 1:
      r = q, g = v, b = p;
      break;
    case 2:
      r = p, g = v, b = t;
      break;
    case 3:
      r = p, g = q, b = v;
      break;
    case 4:
      r = t, g = p, b = v;
      break;
    default:
      r = v, g = p, b = q;
      break;
  }
}

/// Hue shift of (n, 3, H, W) by a per-sample fraction of a turn `shift` (n). float CPU tensors take
/// a fused per-pixel loop (≈ 10× fewer passes than the tensor formula); others the tensor formula
/// (the same to ~1e-6: hsv→rgb via v − v·s·clamp(min(k, 4 − k), 0, 1), k = (n + 6h) mod 6).
torch::Tensor shift_hue(const torch::Tensor& x, const std::vector<double>& shift) {
  const int64_t n = x.size(0), plane = x.size(2) * x.size(3);
  if (x.device().is_cpu() && x.scalar_type() == torch::kFloat) {
    auto out = x.contiguous().clone();
    float* data = out.data_ptr<float>();
    at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        float* r = data + i * 3 * plane;
        float* g = r + plane;
        float* b = g + plane;
        const auto s = static_cast<float>(shift[static_cast<size_t>(i)]);
        for (int64_t j = 0; j < plane; ++j) shift_hue_pixel(r[j], g[j], b[j], s);
      }
    });
    return out;
  }
  auto r = x.select(1, 0), g = x.select(1, 1), b = x.select(1, 2);
  auto maxc = x.amax(1), minc = x.amin(1);
  auto eqc = maxc == minc;
  auto cr = maxc - minc;
  auto s = cr / maxc.masked_fill(eqc, 1.0);
  auto d = cr.masked_fill(eqc, 1.0);
  auto rc = (maxc - r) / d, gc = (maxc - g) / d, bc = (maxc - b) / d;
  auto is_r = maxc == r;
  auto is_g = (maxc == g) & is_r.logical_not();
  auto is_b = (is_r | is_g).logical_not();
  auto h = is_r.to(x.dtype()) * (bc - gc) + is_g.to(x.dtype()) * (2.0 + rc - bc) +
           is_b.to(x.dtype()) * (4.0 + gc - rc);
  h = torch::fmod(h / 6.0 + 1.0, 1.0);
  h = torch::remainder(h + per_sample(shift, x).view({-1, 1, 1}), 1.0);
  auto k = torch::remainder(
      torch::tensor({5.0, 3.0, 1.0}, x.options()).view({1, 3, 1, 1}) + (h * 6.0).unsqueeze(1), 6.0);
  auto w = torch::minimum(k, 4.0 - k).clamp(0, 1);
  auto v = maxc.unsqueeze(1);
  return v - v * s.unsqueeze(1) * w;
}

/// Inverse-maps output pixels through per-sample forward matrices A (n, 2, 2) and translations t
/// (n, 2) in pixels about the image centre (x right, y down); bilinear, align_corners = false.
torch::Tensor warp(const torch::Tensor& x, const std::vector<std::array<double, 6>>& forward,
                   const std::string& padding) {
  const int64_t n = x.size(0);
  const double H = static_cast<double>(x.size(2)), W = static_cast<double>(x.size(3));
  std::vector<double> theta;
  theta.reserve(static_cast<size_t>(n) * 6);
  for (const auto& m : forward) {
    // forward: [a b tx; c d ty]; inverse linear part Ai, then θ = D Ai D⁻¹, −D Ai t with
    // D = diag(2/W, 2/H) taking pixel offsets from the centre to normalised coordinates.
    const double a = m[0], b = m[1], tx = m[2], c = m[3], d = m[4], ty = m[5];
    const double det = a * d - b * c;
    const double ia = d / det, ib = -b / det, ic = -c / det, id = a / det;
    theta.insert(theta.end(), {ia, ib * H / W, -(2.0 / W) * (ia * tx + ib * ty), ic * W / H, id,
                               -(2.0 / H) * (ic * tx + id * ty)});
  }
  auto th = torch::tensor(theta, torch::TensorOptions().dtype(torch::kDouble))
                .to(x.options())
                .view({n, 2, 3});
  namespace F = torch::nn::functional;
  auto grid = F::affine_grid(th, x.sizes(), /*align_corners=*/false);
  auto opts = F::GridSampleFuncOptions().mode(torch::kBilinear).align_corners(false);
  if (padding == "border") {
    opts.padding_mode(torch::kBorder);
  } else {
    opts.padding_mode(torch::kZeros);
  }
  return F::grid_sample(x, grid, opts);
}

std::array<double, 6> rotation_scale(double degrees, double scale, double tx, double ty) {
  // Counter-clockwise on screen (y down) for a positive angle, as torchvision.
  const double r = degrees * M_PI / 180.0;
  return {scale * std::cos(r),  scale * std::sin(r), tx,
          -scale * std::sin(r), scale * std::cos(r), ty};
}

torch::Tensor autocontrast(const torch::Tensor& x) {
  auto lo = x.amin({2, 3}, true), hi = x.amax({2, 3}, true);
  auto range = hi - lo;
  auto ok = range > 0;
  auto scale = torch::where(ok, 1.0 / torch::where(ok, range, torch::ones_like(range)),
                            torch::ones_like(range));
  auto shift = torch::where(ok, lo, torch::zeros_like(lo));
  return ((x - shift) * scale).clamp(0, 1);
}

}  // namespace

// ------------------------------------------------------------------------------------------------

RandomResizedCrop::RandomResizedCrop(RandomResizedCropOptions options)
    : options_(std::move(options)) {
  const auto& o = options_;
  check<ConfigError>(o.size() > 0, "random_resized_crop: size must be > 0 (got {})", o.size());
  check<ConfigError>(o.scale_min() > 0 && o.scale_max() <= 1 && o.scale_min() <= o.scale_max(),
                     "random_resized_crop: scale must satisfy 0 < min <= max <= 1 (got [{}, {}])",
                     o.scale_min(), o.scale_max());
  check<ConfigError>(o.ratio_min() > 0 && o.ratio_min() <= o.ratio_max(),
                     "random_resized_crop: ratio must satisfy 0 < min <= max (got [{}, {}])",
                     o.ratio_min(), o.ratio_max());
}

std::array<int64_t, 4> RandomResizedCrop::sample_box(int64_t height, int64_t width,
                                                     uint64_t sample_seed) const {
  const auto& o = options_;
  SplitMix64 rng(sample_seed);
  const double area = static_cast<double>(height * width);
  const double log_lo = std::log(o.ratio_min()), log_hi = std::log(o.ratio_max());
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * rng.uniform(o.scale_min(), o.scale_max());
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    const auto w = static_cast<int64_t>(std::lround(std::sqrt(target * aspect)));
    const auto h = static_cast<int64_t>(std::lround(std::sqrt(target / aspect)));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const auto top = static_cast<int64_t>(rng.below(static_cast<uint64_t>(height - h + 1)));
      const auto left = static_cast<int64_t>(rng.below(static_cast<uint64_t>(width - w + 1)));
      return {top, left, h, w};
    }
  }
  // Fallback: centre crop, clamped to the ratio range.
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  int64_t w = width, h = height;
  if (in_ratio < o.ratio_min()) {
    h = std::lround(static_cast<double>(w) / o.ratio_min());
  } else if (in_ratio > o.ratio_max()) {
    w = std::lround(static_cast<double>(h) * o.ratio_max());
  }
  return {(height - h) / 2, (width - w) / 2, h, w};
}

torch::Tensor RandomResizedCrop::apply(const torch::Tensor& images, uint64_t seed) const {
  check_images(images, "random_resized_crop");
  torch::NoGradGuard no_grad;
  const int64_t n = images.size(0), H = images.size(2), W = images.size(3), S = options_.size();
  std::vector<double> theta;
  theta.reserve(static_cast<size_t>(n) * 6);
  for (int64_t i = 0; i < n; ++i) {
    auto [top, left, h, w] = sample_box(H, W, mix_seed(seed, static_cast<uint64_t>(i)));
    // Output x_n ∈ [−1, 1] ↦ input (left + (x_n + 1)/2 · w) pixels, normalised by W.
    const double cx = (2.0 * static_cast<double>(left) + static_cast<double>(w)) / W - 1.0;
    const double cy = (2.0 * static_cast<double>(top) + static_cast<double>(h)) / H - 1.0;
    theta.insert(theta.end(),
                 {static_cast<double>(w) / W, 0.0, cx, 0.0, static_cast<double>(h) / H, cy});
  }
  auto th = torch::tensor(theta, torch::TensorOptions().dtype(torch::kDouble))
                .to(images.options())
                .view({n, 2, 3});
  namespace F = torch::nn::functional;
  auto grid = F::affine_grid(th, {n, images.size(1), S, S}, /*align_corners=*/false);
  return F::grid_sample(images, grid,
                        F::GridSampleFuncOptions()
                            .mode(torch::kBilinear)
                            .padding_mode(torch::kBorder)
                            .align_corners(false))
      .clamp(0, 1);
}

// ------------------------------------------------------------------------------------------------

RandomHorizontalFlip::RandomHorizontalFlip(double p) : p_(p) {
  check_p(p, "random_horizontal_flip", "p");
}

torch::Tensor RandomHorizontalFlip::apply(const torch::Tensor& images, uint64_t seed) const {
  check_images(images, "random_horizontal_flip");
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < images.size(0); ++i) {
    if (sample_rng(seed, i).uniform() < p_) idx.push_back(i);
  }
  return apply_subset(images, idx, [](const torch::Tensor& x) { return x.flip({3}); });
}

// ------------------------------------------------------------------------------------------------

RandomAffine::RandomAffine(RandomAffineOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  check<ConfigError>(o.degrees() >= 0, "random_affine: degrees must be >= 0 (got {})", o.degrees());
  check<ConfigError>(o.translate() >= 0 && o.translate() <= 1,
                     "random_affine: translate must be in [0, 1] (got {})", o.translate());
  check<ConfigError>(o.scale_min() > 0 && o.scale_min() <= o.scale_max(),
                     "random_affine: scale must satisfy 0 < min <= max (got [{}, {}])",
                     o.scale_min(), o.scale_max());
  check_p(o.p(), "random_affine", "p");
}

torch::Tensor RandomAffine::apply(const torch::Tensor& images, uint64_t seed) const {
  check_images(images, "random_affine");
  const auto& o = options_;
  const double H = static_cast<double>(images.size(2)), W = static_cast<double>(images.size(3));
  std::vector<int64_t> idx;
  std::vector<std::array<double, 6>> forward;
  for (int64_t i = 0; i < images.size(0); ++i) {
    auto rng = sample_rng(seed, i);
    if (rng.uniform() >= o.p()) continue;
    const double angle = rng.uniform(-o.degrees(), o.degrees());
    const double tx = rng.uniform(-o.translate(), o.translate()) * W;
    const double ty = rng.uniform(-o.translate(), o.translate()) * H;
    const double scale = rng.uniform(o.scale_min(), o.scale_max());
    idx.push_back(i);
    forward.push_back(rotation_scale(angle, scale, std::round(tx), std::round(ty)));
  }
  torch::NoGradGuard no_grad;
  return apply_subset(
      images, idx, [&](const torch::Tensor& x) { return warp(x, forward, "zeros").clamp(0, 1); });
}

// ------------------------------------------------------------------------------------------------

ColorJitter::ColorJitter(ColorJitterOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  check<ConfigError>(o.brightness() >= 0 && o.contrast() >= 0 && o.saturation() >= 0,
                     "color_jitter: brightness, contrast and saturation must be >= 0 (got {}, {}, "
                     "{})",
                     o.brightness(), o.contrast(), o.saturation());
  check<ConfigError>(o.hue() >= 0 && o.hue() <= 0.5,
                     "color_jitter: hue must be in [0, 0.5] (got {})", o.hue());
  check_p(o.p(), "color_jitter", "p");
}

torch::Tensor ColorJitter::apply(const torch::Tensor& images, uint64_t seed) const {
  check_images(images, "color_jitter");
  const auto& o = options_;
  const bool rgb = images.size(1) == 3;
  const std::array<double, 4> strength{o.brightness(), o.contrast(), rgb ? o.saturation() : 0.0,
                                       rgb ? o.hue() : 0.0};
  if (o.p() == 0 || std::all_of(strength.begin(), strength.end(), [](double s) { return s == 0; }))
    return images;
  torch::NoGradGuard no_grad;
  // Per sample: applies?, a random order of the 4 ops, and the 4 factors.
  const int64_t n = images.size(0);
  std::array<std::array<std::vector<int64_t>, 4>, 4> at{};  // at[position][op] = samples
  std::array<std::vector<double>, 4> factor;                // factor[op][sample]
  std::vector<std::array<int, 4>> orders(static_cast<size_t>(n), {-1, -1, -1, -1});
  for (auto& f : factor) f.assign(static_cast<size_t>(n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    auto rng = sample_rng(seed, i);
    if (rng.uniform() >= o.p()) continue;
    auto& order = orders[static_cast<size_t>(i)];
    order = {0, 1, 2, 3};
    for (int k = 3; k > 0; --k) std::swap(order[k], order[rng.below(static_cast<uint64_t>(k + 1))]);
    for (int op = 0; op < 4; ++op) {
      const double s = strength[op];
      factor[op][i] = op == 3 ? rng.uniform(-s, s) : rng.uniform(std::max(0.0, 1 - s), 1 + s);
    }
    for (int k = 0; k < 4; ++k) {
      if (strength[order[k]] > 0) at[k][order[k]].push_back(i);
    }
  }
  if (images.device().is_cpu() && images.scalar_type() == torch::kFloat) {
    // Fused per-image loop: each image stays in cache through its four ops (the tensor path below
    // makes ~25 passes over the batch). Same formulas; results agree to float rounding.
    auto out = images.contiguous().clone();
    float* data = out.data_ptr<float>();
    const int64_t plane = images.size(2) * images.size(3), C = images.size(1);
    at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const auto& order = orders[static_cast<size_t>(i)];
        if (order[0] < 0) continue;
        float* px = data + i * C * plane;
        float* r = px;
        float* g = px + plane;
        float* b = px + 2 * plane;
        for (int op : order) {
          if (strength[op] == 0) continue;
          const auto f = static_cast<float>(factor[op][static_cast<size_t>(i)]);
          if (op == 0) {
            for (int64_t j = 0; j < C * plane; ++j) px[j] = std::clamp(px[j] * f, 0.0f, 1.0f);
          } else if (op == 1) {
            double sum = 0;
            for (int64_t j = 0; j < plane; ++j) {
              sum += rgb ? 0.299f * r[j] + 0.587f * g[j] + 0.114f * b[j] : px[j];
            }
            const auto mean = static_cast<float>(sum / static_cast<double>(plane));
            for (int64_t j = 0; j < C * plane; ++j) {
              px[j] = std::clamp(f * px[j] + (1 - f) * mean, 0.0f, 1.0f);
            }
          } else if (op == 2) {
            for (int64_t j = 0; j < plane; ++j) {
              const float l = 0.299f * r[j] + 0.587f * g[j] + 0.114f * b[j];
              r[j] = std::clamp(f * r[j] + (1 - f) * l, 0.0f, 1.0f);
              g[j] = std::clamp(f * g[j] + (1 - f) * l, 0.0f, 1.0f);
              b[j] = std::clamp(f * b[j] + (1 - f) * l, 0.0f, 1.0f);
            }
          } else {
            for (int64_t j = 0; j < plane; ++j) shift_hue_pixel(r[j], g[j], b[j], f);
          }
        }
      }
    });
    return out;
  }
  auto out = images;
  for (int k = 0; k < 4; ++k) {
    for (int op = 0; op < 4; ++op) {
      const auto& idx = at[k][op];
      if (idx.empty()) continue;
      std::vector<double> f;
      f.reserve(idx.size());
      for (auto i : idx) f.push_back(factor[op][i]);
      out = apply_subset(out, idx, [&](const torch::Tensor& x) {
        auto r = per_sample(f, x);
        switch (op) {
          case 0:  // brightness: blend with black
            return (x * r).clamp(0, 1);
          case 1: {  // contrast: blend with the mean luma
            auto mean = (rgb ? luma(x) : x).mean({1, 2, 3}, true);
            return blend(x, mean, r);
          }
          case 2:  // saturation: blend with the luma image
            return blend(x, luma(x), r);
          default:
            return shift_hue(x, f);
        }
      });
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------------

RandomGrayscale::RandomGrayscale(double p) : p_(p) { check_p(p, "random_grayscale", "p"); }

torch::Tensor RandomGrayscale::apply(const torch::Tensor& images, uint64_t seed) const {
  check_images(images, "random_grayscale");
  if (images.size(1) == 1) return images;
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < images.size(0); ++i) {
    if (sample_rng(seed, i).uniform() < p_) idx.push_back(i);
  }
  return apply_subset(images, idx,
                      [](const torch::Tensor& x) { return luma(x).expand_as(x).contiguous(); });
}

// ------------------------------------------------------------------------------------------------

GaussianBlur::GaussianBlur(GaussianBlurOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  check<ConfigError>(o.kernel_size() > 0 && o.kernel_size() % 2 == 1,
                     "gaussian_blur: kernel_size must be odd and > 0 (got {})", o.kernel_size());
  check<ConfigError>(o.sigma_min() > 0 && o.sigma_min() <= o.sigma_max(),
                     "gaussian_blur: sigma must satisfy 0 < min <= max (got [{}, {}])",
                     o.sigma_min(), o.sigma_max());
  check_p(o.p(), "gaussian_blur", "p");
}

torch::Tensor GaussianBlur::apply(const torch::Tensor& images, uint64_t seed) const {
  check_images(images, "gaussian_blur");
  const auto& o = options_;
  const int64_t K = o.kernel_size(), half = K / 2;
  std::vector<int64_t> idx;
  std::vector<double> kernels;  // (k, K)
  for (int64_t i = 0; i < images.size(0); ++i) {
    auto rng = sample_rng(seed, i);
    if (rng.uniform() >= o.p()) continue;
    const double sigma = rng.uniform(o.sigma_min(), o.sigma_max());
    idx.push_back(i);
    double sum = 0;
    const size_t start = kernels.size();
    for (int64_t j = 0; j < K; ++j) {
      const double x = static_cast<double>(j - half) / sigma;
      kernels.push_back(std::exp(-0.5 * x * x));
      sum += kernels.back();
    }
    for (size_t j = start; j < kernels.size(); ++j) kernels[j] /= sum;
  }
  if (idx.empty() || K == 1) return images;
  torch::NoGradGuard no_grad;
  return apply_subset(images, idx, [&](const torch::Tensor& x) {
    namespace F = torch::nn::functional;
    const int64_t n = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
    auto kernel = torch::tensor(kernels, torch::TensorOptions().dtype(torch::kDouble))
                      .to(x.options())
                      .view({n, 1, K})
                      .repeat_interleave(C, 0);  // (n·C, 1, K)
    // Reflect needs the pad < the side; tiny images fall back to replicate.
    auto pad = F::PadFuncOptions({half, half, half, half});
    if (half < H && half < W) {
      pad.mode(torch::kReflect);
    } else {
      pad.mode(torch::kReplicate);
    }
    auto padded = F::pad(x.reshape({1, n * C, H, W}), pad);
    auto y = F::conv2d(padded, kernel.view({n * C, 1, 1, K}), F::Conv2dFuncOptions().groups(n * C));
    y = F::conv2d(y, kernel.view({n * C, 1, K, 1}), F::Conv2dFuncOptions().groups(n * C));
    return y.view({n, C, H, W}).clamp(0, 1);
  });
}

// ------------------------------------------------------------------------------------------------

Solarize::Solarize(double threshold, double p) : threshold_(threshold), p_(p) {
  check<ConfigError>(threshold >= 0 && threshold <= 1,
                     "solarize: threshold must be in [0, 1] (got {})", threshold);
  check_p(p, "solarize", "p");
}

torch::Tensor Solarize::apply(const torch::Tensor& images, uint64_t seed) const {
  check_images(images, "solarize");
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < images.size(0); ++i) {
    if (sample_rng(seed, i).uniform() < p_) idx.push_back(i);
  }
  return apply_subset(
      images, idx, [&](const torch::Tensor& x) { return torch::where(x >= threshold_, 1 - x, x); });
}

// ------------------------------------------------------------------------------------------------

torch::Tensor Compose::apply(const torch::Tensor& images, uint64_t seed) const {
  auto x = images;
  for (size_t k = 0; k < steps_.size(); ++k) x = steps_[k]->apply(x, mix_seed(seed, k, kStepSalt));
  return x;
}

MultiView::MultiView(ImageTransformPtr transform, int64_t views)
    : transform_(std::move(transform)), views_(views) {
  check<ConfigError>(transform_ != nullptr, "multi_view: transform must not be null");
  check<ConfigError>(views >= 1, "multi_view: views must be >= 1 (got {})", views);
}

std::vector<torch::Tensor> MultiView::operator()(const torch::Tensor& images, uint64_t seed) const {
  std::vector<torch::Tensor> out;
  for (int64_t v = 0; v < views_; ++v) {
    out.push_back(transform_->apply(images, mix_seed(seed, static_cast<uint64_t>(v), kViewSalt)));
  }
  return out;
}

MultiCrop::MultiCrop(MultiCropOptions options, ImageTransformPtr after)
    : options_(std::move(options)), after_(std::move(after)) {
  const auto& o = options_;
  check<ConfigError>(
      o.global_crops() >= 0 && o.local_crops() >= 0 && o.global_crops() + o.local_crops() >= 1,
      "multi_crop: need >= 1 crop (got {} global, {} local)", o.global_crops(), o.local_crops());
  for (int64_t v = 0; v < o.global_crops(); ++v) {
    crops_.emplace_back(RandomResizedCropOptions(o.global_size())
                            .scale_min(o.global_scale_min())
                            .scale_max(o.global_scale_max()));
  }
  for (int64_t v = 0; v < o.local_crops(); ++v) {
    crops_.emplace_back(RandomResizedCropOptions(o.local_size())
                            .scale_min(o.local_scale_min())
                            .scale_max(o.local_scale_max()));
  }
}

std::vector<torch::Tensor> MultiCrop::operator()(const torch::Tensor& images, uint64_t seed) const {
  std::vector<torch::Tensor> out;
  for (size_t v = 0; v < crops_.size(); ++v) {
    const uint64_t view_seed = mix_seed(seed, v, kViewSalt);
    auto x = crops_[v].apply(images, mix_seed(view_seed, 0, kStepSalt));
    if (after_) x = after_->apply(x, mix_seed(view_seed, 1, kStepSalt));
    out.push_back(x);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------

namespace {

double sample_gamma(SplitMix64& rng, double alpha) {  // Marsaglia & Tsang 2000
  if (alpha < 1) return sample_gamma(rng, alpha + 1) * std::pow(rng.uniform(), 1.0 / alpha);
  const double d = alpha - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    const double x = rng.normal();
    double v = 1 + c * x;
    if (v <= 0) continue;
    v = v * v * v;
    const double u = rng.uniform();
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
  }
}

}  // namespace

CutMixResult cutmix(const torch::Tensor& images, double alpha, uint64_t seed) {
  check_images(images, "cutmix");
  check<ConfigError>(alpha > 0, "cutmix: alpha must be > 0 (got {})", alpha);
  SplitMix64 rng(mix_seed(seed, 0, 3));
  const double ga = sample_gamma(rng, alpha), gb = sample_gamma(rng, alpha);
  const double lam = ga / (ga + gb);
  const int64_t n = images.size(0), H = images.size(2), W = images.size(3);
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  for (int64_t k = n - 1; k > 0; --k) {
    std::swap(perm[k], perm[rng.below(static_cast<uint64_t>(k + 1))]);
  }
  const double cut = std::sqrt(1.0 - lam);
  const auto cut_h = static_cast<int64_t>(static_cast<double>(H) * cut);
  const auto cut_w = static_cast<int64_t>(static_cast<double>(W) * cut);
  const auto cy = static_cast<int64_t>(rng.below(static_cast<uint64_t>(H)));
  const auto cx = static_cast<int64_t>(rng.below(static_cast<uint64_t>(W)));
  const int64_t top = std::clamp(cy - cut_h / 2, int64_t{0}, H);
  const int64_t bottom = std::clamp(cy + cut_h / 2, int64_t{0}, H);
  const int64_t left = std::clamp(cx - cut_w / 2, int64_t{0}, W);
  const int64_t right = std::clamp(cx + cut_w / 2, int64_t{0}, W);
  CutMixResult result;
  result.permutation = torch::tensor(perm, torch::TensorOptions().dtype(torch::kLong));
  result.box = {top, left, bottom, right};
  result.lambda =
      1.0 - static_cast<double>((bottom - top) * (right - left)) / static_cast<double>(H * W);
  torch::NoGradGuard no_grad;
  auto mixed = images.clone();
  if (bottom > top && right > left) {
    auto source = images.index_select(0, result.permutation.to(images.device()));
    mixed.slice(2, top, bottom)
        .slice(3, left, right)
        .copy_(source.slice(2, top, bottom).slice(3, left, right));
  }
  result.images = mixed;
  return result;
}

// ------------------------------------------------------------------------------------------------
// The op set shared by RandAugment and AutoAugment (torchvision's _apply_op on float images).

namespace {

enum Op {
  kIdentity,
  kShearX,
  kShearY,
  kTranslateX,
  kTranslateY,
  kRotate,
  kBrightness,
  kColor,
  kContrast,
  kSharpness,
  kPosterize,
  kSolarize,
  kAutoContrast,
  kEqualize,
  kInvert,
  kNumOps
};

const char* const kOpNames[kNumOps] = {"Identity",     "ShearX",    "ShearY",     "TranslateX",
                                       "TranslateY",   "Rotate",    "Brightness", "Color",
                                       "Contrast",     "Sharpness", "Posterize",  "Solarize",
                                       "AutoContrast", "Equalize",  "Invert"};

/// Magnitude of `op` at bin `bin` of `bins` (torchvision's _augmentation_space / _get_magnitudes):
/// shear 0.3, translate 150/331 of the side (as a fraction), rotate 30°, enhance ±0.9, posterize
/// 8 − round(4·bin/(bins−1)) bits, solarize threshold 1 − bin/(bins−1).
double op_magnitude(Op op, int64_t bin, int64_t bins) {
  const double t = bins > 1 ? static_cast<double>(bin) / static_cast<double>(bins - 1) : 0.0;
  switch (op) {
    case kShearX:
    case kShearY:
      return 0.3 * t;
    case kTranslateX:
    case kTranslateY:
      return 150.0 / 331.0 * t;
    case kRotate:
      return 30.0 * t;
    case kBrightness:
    case kColor:
    case kContrast:
    case kSharpness:
      return 0.9 * t;
    case kPosterize:
      return 8.0 - std::round(4.0 * t);
    case kSolarize:
      return 1.0 - t;
    default:
      return 0.0;
  }
}

bool op_signed(Op op) {
  return op == kShearX || op == kShearY || op == kTranslateX || op == kTranslateY ||
         op == kRotate || op == kBrightness || op == kColor || op == kContrast || op == kSharpness;
}

/// uint8 levels of a float image as torchvision's convert_image_dtype (×255.999, floor).
torch::Tensor to_levels(const torch::Tensor& x) {
  return (x * 255.999).floor().clamp(0, 255).to(torch::kLong);
}

/// PIL/torchvision equalize per image and channel, batched: 256-bin histograms by scatter_add.
torch::Tensor equalize(const torch::Tensor& x) {
  const int64_t n = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  auto q = to_levels(x).view({n * C, HW});
  auto hist = torch::zeros({n * C, 256}, q.options()).scatter_add_(1, q, torch::ones_like(q));
  auto bins = torch::arange(256, q.options()).unsqueeze(0);
  auto last = (bins * (hist > 0).to(torch::kLong)).amax(1, true);  // last non-empty bin
  auto step = (HW - hist.gather(1, last)).div(255, "floor");       // (n·C, 1)
  auto safe = torch::where(step > 0, step, torch::ones_like(step));
  auto lut = (hist.cumsum(1) + safe.div(2, "floor")).div(safe, "floor");
  lut =
      torch::cat({torch::zeros({n * C, 1}, lut.options()), lut.slice(1, 0, 255)}, 1).clamp(0, 255);
  auto mapped = lut.gather(1, q).to(x.dtype()) / 255.0;
  auto out = torch::where(step > 0, mapped, x.reshape({n * C, HW}));
  return out.view(x.sizes());
}

/// torchvision's adjust_sharpness: blend with the 3×3 smoothing [[1,1,1],[1,5,1],[1,1,1]]/13,
/// border pixels kept.
torch::Tensor sharpness(const torch::Tensor& x, const torch::Tensor& factor) {
  const int64_t n = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  if (H <= 2 || W <= 2) return x;
  auto kernel = torch::ones({3, 3}, x.options());
  kernel[1][1] = 5.0;
  kernel = (kernel / 13.0).expand({n * C, 1, 3, 3}).contiguous();
  namespace F = torch::nn::functional;
  auto smooth = F::conv2d(x.reshape({1, n * C, H, W}), kernel, F::Conv2dFuncOptions().groups(n * C))
                    .view({n, C, H - 2, W - 2});
  auto degenerate = x.clone();
  degenerate.slice(2, 1, H - 1).slice(3, 1, W - 1).copy_(smooth);
  return blend(x, degenerate, factor);
}

/// Applies `op` to every image of x (a subset) with per-image magnitudes `m` (signed where the op
/// is signed).
torch::Tensor apply_op(Op op, const torch::Tensor& x, const std::vector<double>& m) {
  const bool rgb = x.size(1) == 3;
  const double H = static_cast<double>(x.size(2)), W = static_cast<double>(x.size(3));
  std::vector<double> f;
  for (double v : m) f.push_back(1.0 + v);
  std::vector<std::array<double, 6>> forward;
  switch (op) {
    case kIdentity:
      return x;
    case kBrightness:
      return (x * per_sample(f, x)).clamp(0, 1);
    case kColor:
      return rgb ? blend(x, luma(x), per_sample(f, x)) : x;
    case kContrast:
      return blend(x, (rgb ? luma(x) : x).mean({1, 2, 3}, true), per_sample(f, x));
    case kSharpness:
      return sharpness(x, per_sample(f, x));
    case kPosterize: {
      std::vector<double> keep;  // 2^(8 − bits): levels are floored to multiples of it
      for (double bits : m) keep.push_back(std::pow(2.0, 8.0 - bits));
      auto k = per_sample(keep, x);
      return (to_levels(x).to(x.dtype()) / k).floor() * k / 255.0;
    }
    case kSolarize:
      return torch::where(x >= per_sample(m, x), 1 - x, x);
    case kAutoContrast:
      return autocontrast(x);
    case kEqualize:
      return equalize(x);
    case kInvert:
      return 1 - x;
    default:
      break;
  }
  for (double v : m) {
    switch (op) {
      case kRotate:
        forward.push_back(rotation_scale(v, 1.0, 0, 0));
        break;
      case kShearX:
        forward.push_back({1, v, 0, 0, 1, 0});
        break;
      case kShearY:
        forward.push_back({1, 0, 0, v, 1, 0});
        break;
      case kTranslateX:
        forward.push_back({1, 0, std::trunc(W * v), 0, 1, 0});
        break;
      default:
        forward.push_back({1, 0, 0, 0, 1, std::trunc(H * v)});
        break;
    }
  }
  return warp(x, forward, "zeros").clamp(0, 1);
}

/// One round of per-image ops: image i gets ops[i] with magnitude mags[i] (kIdentity = skip).
torch::Tensor apply_ops(const torch::Tensor& x, const std::vector<Op>& ops,
                        const std::vector<double>& mags) {
  auto out = x;
  for (int op = 1; op < kNumOps; ++op) {
    std::vector<int64_t> idx;
    std::vector<double> m;
    for (size_t i = 0; i < ops.size(); ++i) {
      if (ops[i] == op) {
        idx.push_back(static_cast<int64_t>(i));
        m.push_back(mags[i]);
      }
    }
    out = apply_subset(out, idx,
                       [&](const torch::Tensor& s) { return apply_op(static_cast<Op>(op), s, m); });
  }
  return out;
}

}  // namespace

const std::vector<std::string>& RandAugment::op_names() {
  static const std::vector<std::string> names(kOpNames, kOpNames + kNumOps - 1);  // no Invert
  return names;
}

RandAugment::RandAugment(RandAugmentOptions options) : options_(std::move(options)) {
  check<ConfigError>(options_.n() >= 0, "rand_augment: n must be >= 0 (got {})", options_.n());
  check<ConfigError>(options_.m() >= 0 && options_.m() <= 30,
                     "rand_augment: m must be in [0, 30] (got {})", options_.m());
}

torch::Tensor RandAugment::apply(const torch::Tensor& images, uint64_t seed) const {
  check_images(images, "rand_augment");
  const int64_t n = images.size(0);
  torch::NoGradGuard no_grad;
  std::vector<SplitMix64> rngs;
  for (int64_t i = 0; i < n; ++i) rngs.push_back(sample_rng(seed, i));
  auto out = images;
  for (int64_t round = 0; round < options_.n(); ++round) {
    std::vector<Op> ops;
    std::vector<double> mags;
    for (auto& rng : rngs) {
      const auto op = static_cast<Op>(rng.below(kNumOps - 1));  // Identity … Equalize
      double m = op_magnitude(op, options_.m(), 31);
      if (op_signed(op) && rng.uniform() < 0.5) m = -m;
      ops.push_back(op);
      mags.push_back(m);
    }
    out = apply_ops(out, ops, mags);
  }
  return out;
}

namespace {

struct SubPolicy {
  Op op1;
  double p1;
  int64_t bin1;
  Op op2;
  double p2;
  int64_t bin2;
};

// Cubuk et al. 2018 (arXiv:1805.09501), the CIFAR-10 policy, as torchvision lists it.
const SubPolicy kCifar10Policy[25] = {
    {kInvert, 0.1, 0, kContrast, 0.2, 6},         {kRotate, 0.7, 2, kTranslateX, 0.3, 9},
    {kSharpness, 0.8, 1, kSharpness, 0.9, 3},     {kShearY, 0.5, 8, kTranslateY, 0.7, 9},
    {kAutoContrast, 0.5, 0, kEqualize, 0.9, 0},   {kShearY, 0.2, 7, kPosterize, 0.3, 7},
    {kColor, 0.4, 3, kBrightness, 0.6, 7},        {kSharpness, 0.3, 9, kBrightness, 0.7, 9},
    {kEqualize, 0.6, 0, kEqualize, 0.5, 0},       {kContrast, 0.6, 7, kSharpness, 0.6, 5},
    {kColor, 0.7, 7, kTranslateX, 0.5, 8},        {kEqualize, 0.3, 0, kAutoContrast, 0.4, 0},
    {kTranslateY, 0.4, 3, kSharpness, 0.2, 6},    {kBrightness, 0.9, 6, kColor, 0.2, 8},
    {kSolarize, 0.5, 2, kInvert, 0.0, 0},         {kEqualize, 0.2, 0, kAutoContrast, 0.6, 0},
    {kEqualize, 0.2, 0, kEqualize, 0.6, 0},       {kColor, 0.9, 9, kEqualize, 0.6, 0},
    {kAutoContrast, 0.8, 0, kSolarize, 0.2, 8},   {kBrightness, 0.1, 3, kColor, 0.7, 0},
    {kSolarize, 0.4, 5, kAutoContrast, 0.9, 0},   {kTranslateY, 0.9, 9, kTranslateY, 0.7, 9},
    {kAutoContrast, 0.9, 0, kSolarize, 0.8, 3},   {kEqualize, 0.8, 0, kInvert, 0.1, 0},
    {kTranslateY, 0.7, 9, kAutoContrast, 0.9, 0},
};

}  // namespace

int64_t AutoAugmentCifar10::policy_size() { return 25; }

torch::Tensor AutoAugmentCifar10::apply(const torch::Tensor& images, uint64_t seed) const {
  check_images(images, "auto_augment");
  const int64_t n = images.size(0);
  torch::NoGradGuard no_grad;
  std::array<std::vector<Op>, 2> ops;
  std::array<std::vector<double>, 2> mags;
  for (int64_t i = 0; i < n; ++i) {
    auto rng = sample_rng(seed, i);
    const auto& sub = kCifar10Policy[rng.below(25)];
    const std::array<Op, 2> op{sub.op1, sub.op2};
    const std::array<double, 2> p{sub.p1, sub.p2};
    const std::array<int64_t, 2> bin{sub.bin1, sub.bin2};
    for (int k = 0; k < 2; ++k) {
      const bool on = rng.uniform() < p[k];
      double m = op_magnitude(op[k], bin[k], 10);
      if (op_signed(op[k]) && rng.uniform() < 0.5) m = -m;
      ops[k].push_back(on ? op[k] : kIdentity);
      mags[k].push_back(m);
    }
  }
  return apply_ops(apply_ops(images, ops[0], mags[0]), ops[1], mags[1]);
}
// ------------------------------------------------------------------------------------------------

void ImageAugmentConfig::validate() const {
  auto p = [](double v, const char* key) {
    check<ConfigError>(v >= 0 && v <= 1, "{}: must be in [0, 1] (got {})", key, v);
  };
  auto nonneg = [](double v, const char* key) {
    check<ConfigError>(v >= 0, "{}: must be >= 0 (got {})", key, v);
  };
  check<ConfigError>(size > 0, "size: must be > 0 (got {})", size);
  check<ConfigError>(scale_min > 0 && scale_min <= 1, "scale_min: must be in (0, 1] (got {})",
                     scale_min);
  check<ConfigError>(scale_max >= scale_min && scale_max <= 1,
                     "scale_max: must be in [scale_min, 1] (got {})", scale_max);
  check<ConfigError>(ratio_min > 0, "ratio_min: must be > 0 (got {})", ratio_min);
  check<ConfigError>(ratio_max >= ratio_min, "ratio_max: must be >= ratio_min (got {})", ratio_max);
  p(flip_p, "flip_p");
  p(affine_p, "affine_p");
  nonneg(degrees, "degrees");
  check<ConfigError>(translate >= 0 && translate <= 1, "translate: must be in [0, 1] (got {})",
                     translate);
  p(jitter_p, "jitter_p");
  nonneg(brightness, "brightness");
  nonneg(contrast, "contrast");
  nonneg(saturation, "saturation");
  check<ConfigError>(hue >= 0 && hue <= 0.5, "hue: must be in [0, 0.5] (got {})", hue);
  p(grayscale_p, "grayscale_p");
  p(blur_p, "blur_p");
  check<ConfigError>(blur_kernel == 0 || (blur_kernel > 0 && blur_kernel % 2 == 1),
                     "blur_kernel: must be 0 (auto) or odd and > 0 (got {})", blur_kernel);
  check<ConfigError>(blur_sigma_min > 0, "blur_sigma_min: must be > 0 (got {})", blur_sigma_min);
  check<ConfigError>(blur_sigma_max >= blur_sigma_min,
                     "blur_sigma_max: must be >= blur_sigma_min (got {})", blur_sigma_max);
  p(solarize_p, "solarize_p");
  p(solarize_threshold, "solarize_threshold");
}

int64_t ImageAugmentConfig::kernel_size() const {
  if (blur_kernel > 0) return blur_kernel;
  const auto k = static_cast<int64_t>(0.1 * static_cast<double>(size));
  return k % 2 == 1 ? k : k + 1;
}

std::shared_ptr<Compose> ImageAugmentConfig::build() const {
  validate();
  auto chain = std::make_shared<Compose>();
  chain->add(std::make_shared<RandomResizedCrop>(RandomResizedCropOptions(size)
                                                     .scale_min(scale_min)
                                                     .scale_max(scale_max)
                                                     .ratio_min(ratio_min)
                                                     .ratio_max(ratio_max)));
  if (affine_p > 0 && (degrees > 0 || translate > 0)) {
    chain->add(std::make_shared<RandomAffine>(
        RandomAffineOptions().degrees(degrees).translate(translate).p(affine_p)));
  }
  if (flip_p > 0) chain->add(std::make_shared<RandomHorizontalFlip>(flip_p));
  if (jitter_p > 0 && (brightness > 0 || contrast > 0 || saturation > 0 || hue > 0)) {
    chain->add(std::make_shared<ColorJitter>(ColorJitterOptions()
                                                 .brightness(brightness)
                                                 .contrast(contrast)
                                                 .saturation(saturation)
                                                 .hue(hue)
                                                 .p(jitter_p)));
  }
  if (grayscale_p > 0) chain->add(std::make_shared<RandomGrayscale>(grayscale_p));
  if (blur_p > 0) {
    chain->add(std::make_shared<GaussianBlur>(GaussianBlurOptions(kernel_size())
                                                  .sigma_min(blur_sigma_min)
                                                  .sigma_max(blur_sigma_max)
                                                  .p(blur_p)));
  }
  if (solarize_p > 0) chain->add(std::make_shared<Solarize>(solarize_threshold, solarize_p));
  return chain;
}

ImageAugmentConfig ImageAugmentConfig::simclr(int64_t size) {
  ImageAugmentConfig c;
  c.size = size;
  c.brightness = c.contrast = c.saturation = 0.8;
  c.hue = 0.2;
  return c;
}

ImageAugmentConfig ImageAugmentConfig::moco_v1(int64_t size) {
  ImageAugmentConfig c;
  c.size = size;
  c.scale_min = 0.2;
  c.jitter_p = 1.0;
  c.brightness = c.contrast = c.saturation = c.hue = 0.4;
  c.blur_p = 0.0;
  return c;
}

ImageAugmentConfig ImageAugmentConfig::moco_v2(int64_t size) {
  ImageAugmentConfig c;
  c.size = size;
  c.scale_min = 0.2;
  return c;
}

}  // namespace contra::transforms
