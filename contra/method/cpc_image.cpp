#include "contra/method/cpc_image.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/dist/collectives.h"

namespace contra::method {

// ---- config -------------------------------------------------------------------------------------

void CpcPatchEncoderConfig::validate() const {
  check<ConfigError>(in_channels > 0, "in_channels: must be > 0 (got {})", in_channels);
  check<ConfigError>(width > 0, "width: must be > 0 (got {})", width);
  check<ConfigError>(norm == "layer" || norm == "batch" || norm == "none",
                     "norm: must be layer, batch or none (got '{}')", norm);
}

nn::PatchEncoderOptions CpcPatchEncoderConfig::options() const {
  return nn::PatchEncoderOptions().in_channels(in_channels).width(width).norm(norm);
}

void CpcImageContextConfig::validate() const {
  check<ConfigError>(channels > 0, "channels: must be > 0 (got {})", channels);
  check<ConfigError>(blocks >= 1, "blocks: must be >= 1 (got {})", blocks);
  check<ConfigError>(kernel >= 1 && kernel % 2 == 1, "kernel: must be odd and >= 1 (got {})",
                     kernel);
}

void CpcImageConfig::validate() const {
  // Sections validate themselves when read from YAML; this re-checks a struct built in code.
  auto section = [](const char* name, auto&& f) {
    try {
      f();
    } catch (const ConfigError& e) {
      throw ConfigError(std::string(name) + "." + e.what());
    }
  };
  section("encoder", [&] { encoder.validate(); });
  section("context", [&] { context.validate(); });
  check<ConfigError>(patch_size >= 4,
                     "patch_size: must be >= 4 (the patch encoder pools twice), got {}",
                     patch_size);
  check<ConfigError>(patch_stride >= 1, "patch_stride: must be >= 1, got {}", patch_stride);
  check<ConfigError>(patch_jitter >= 0 && 2 * patch_jitter < patch_stride,
                     "patch_jitter: must be >= 0 and < patch_stride / 2 = {:g} so that jittered "
                     "rows keep their order (got {})",
                     patch_stride / 2.0, patch_jitter);
  check<ConfigError>(patch_color >= 0 && patch_color < 1,
                     "patch_color: must be in [0, 1) (0 = off), got {}", patch_color);
  check<ConfigError>(target_dim >= 0, "target_dim: must be >= 0 (0 = z itself), got {}",
                     target_dim);
  check<ConfigError>(prediction_steps >= 1, "prediction_steps: must be >= 1, got {}",
                     prediction_steps);
  check<ConfigError>(skip_steps >= 0 && skip_steps < prediction_steps,
                     "skip_steps: must be in [0, prediction_steps = {}), got {}", prediction_steps,
                     skip_steps);
  check<ConfigError>(emb_scale > 0, "emb_scale: must be > 0, got {}", emb_scale);
  check<ConfigError>(online_probe_classes == 0 || online_probe_classes >= 2,
                     "online_probe_classes: must be 0 (off) or >= 2, got {}", online_probe_classes);
}

int64_t CpcImageConfig::grid_side(int64_t side) const {
  return side < patch_size ? 0 : (side - patch_size) / patch_stride + 1;
}

// ---- patches ------------------------------------------------------------------------------------

torch::Tensor extract_patches(const torch::Tensor& x, int64_t patch, int64_t stride) {
  TORCH_CHECK(x.dim() == 4, "extract_patches: images must be (B, C, H, W), got ", x.sizes());
  TORCH_CHECK(x.size(2) >= patch && x.size(3) >= patch, "extract_patches: images ", x.sizes(),
              " are smaller than the patch side ", patch);
  // (B, C, Gh, Gw, P, P) → (B, Gh, Gw, C, P, P)
  return x.unfold(2, patch, stride).unfold(3, patch, stride).permute({0, 2, 3, 1, 4, 5});
}

torch::Tensor cut_patches(const torch::Tensor& x, const torch::Tensor& top,
                          const torch::Tensor& left, int64_t patch) {
  TORCH_CHECK(x.dim() == 4, "cut_patches: images must be (B, C, H, W), got ", x.sizes());
  TORCH_CHECK(top.dim() == 3 && top.sizes() == left.sizes() && top.size(0) == x.size(0),
              "cut_patches: top and left must be (B, Gh, Gw), got ", top.sizes(), " and ",
              left.sizes());
  const int64_t B = x.size(0);
  auto range = torch::arange(patch, top.options());
  auto rows = (top.unsqueeze(-1) + range).unsqueeze(-1);   // (B, Gh, Gw, P, 1)
  auto cols = (left.unsqueeze(-1) + range).unsqueeze(-2);  // (B, Gh, Gw, 1, P)
  auto b = torch::arange(B, top.options()).view({B, 1, 1, 1, 1});
  // (B, H, W, C)[b, rows, cols] → (B, Gh, Gw, P, P, C) → (B, Gh, Gw, C, P, P)
  return x.permute({0, 2, 3, 1}).index({b, rows, cols}).permute({0, 1, 2, 5, 3, 4});
}

// ---- the method ---------------------------------------------------------------------------------

CpcImage::CpcImage(CpcImageConfig config) : config_(std::move(config)) {
  config_.validate();
  const int64_t d = config_.encoder.output_size();
  const auto& c = config_.context;
  encoder = register_module("encoder", nn::PatchEncoder(config_.encoder.options()));
  context = register_module(
      "context",
      nn::MaskedContext(
          nn::MaskedContextOptions(d).channels(c.channels).blocks(c.blocks).kernel(c.kernel)));
  const int64_t t = config_.target_dim > 0 ? config_.target_dim : d;
  if (config_.target_dim > 0) {
    target = register_module("target", torch::nn::Conv2d(torch::nn::Conv2dOptions(d, t, 1)));
  }
  const int64_t steps = config_.prediction_steps - config_.skip_steps;
  predictor =
      register_module("predictor", torch::nn::Conv2d(torch::nn::Conv2dOptions(d, steps * t, 1)));
  if (config_.online_probe_classes > 0) {
    probe = register_module("probe", OnlineProbe(d, config_.online_probe_classes));
  }
}

void CpcImage::check_batch(int64_t batch_size, int64_t views, int64_t side) const {
  check<ConfigError>(views == 1,
                     "augment.views: cpc_image uses one view per image (its patches are the "
                     "augmented parts), got {}",
                     views);
  check<ConfigError>(batch_size >= 1, "train.batch_size: must be >= 1, got {}", batch_size);
  check<ConfigError>(side >= config_.patch_size,
                     "augment.size: the views' side {} is smaller than method.patch_size {}", side,
                     config_.patch_size);
  const int64_t rows = config_.grid_side(side);
  check<ConfigError>(
      rows > config_.prediction_steps,
      "method.prediction_steps: {} needs a patch grid of more than {} rows, but "
      "augment.size {} with method.patch_size {} and method.patch_stride {} gives {}",
      config_.prediction_steps, config_.prediction_steps, side, config_.patch_size,
      config_.patch_stride, rows);
}

void CpcImage::check_grid(int64_t height, int64_t width) const {
  check<ConfigError>(
      height >= config_.patch_size && width >= config_.patch_size,
      "cpc_image: images of {}×{} are smaller than method.patch_size {} (augment.size)", height,
      width, config_.patch_size);
  const int64_t rows = config_.grid_side(height);
  check<ConfigError>(
      rows > config_.prediction_steps,
      "cpc_image: method.prediction_steps {} needs a patch grid of more than {} "
      "rows, but images of height {} give {} (method.patch_size {}, patch_stride {})",
      config_.prediction_steps, config_.prediction_steps, height, rows, config_.patch_size,
      config_.patch_stride);
}

torch::Tensor CpcImage::patches(const torch::Tensor& images, bool augment) const {
  const int64_t P = config_.patch_size, S = config_.patch_stride, J = config_.patch_jitter;
  const double s = config_.patch_color;
  if (!augment || (J == 0 && s == 0)) return extract_patches(images, P, S);
  const int64_t B = images.size(0), H = images.size(2), W = images.size(3);
  const int64_t gh = config_.grid_side(H), gw = config_.grid_side(W);
  torch::Tensor p;
  if (J > 0) {
    const auto opts = torch::TensorOptions().dtype(torch::kLong).device(images.device());
    // Each patch's own offset in [−J, J] per axis, clamped so the patch stays inside the image.
    auto top = (torch::arange(gh, opts) * S).view({1, gh, 1}) +
               torch::randint(-J, J + 1, {B, gh, gw}, opts);
    auto left = (torch::arange(gw, opts) * S).view({1, 1, gw}) +
                torch::randint(-J, J + 1, {B, gh, gw}, opts);
    p = cut_patches(images, top.clamp(0, H - P), left.clamp(0, W - P), P);
  } else {
    p = extract_patches(images, P, S);
  }
  if (s > 0) {
    auto u = torch::rand({2, B, gh, gw, 1, 1, 1}, images.options());
    auto contrast = 1 + s * (2 * u[0] - 1), shift = s * (2 * u[1] - 1);
    auto mean = p.mean({3, 4, 5}, /*keepdim=*/true);
    p = (p - mean) * contrast + mean + shift;
  }
  return p;
}

torch::Tensor CpcImage::encode(const torch::Tensor& patches) {
  TORCH_CHECK(patches.dim() == 6, "cpc_image: patches must be (B, Gh, Gw, C, P, P), got ",
              patches.sizes());
  const int64_t B = patches.size(0), gh = patches.size(1), gw = patches.size(2);
  auto z = encoder->forward(patches.reshape(
      {B * gh * gw, patches.size(3), patches.size(4), patches.size(5)}));  // (B·Gh·Gw, D)
  return z.view({B, gh, gw, z.size(1)}).permute({0, 3, 1, 2});             // (B, D, Gh, Gw)
}

torch::Tensor CpcImage::targets(const torch::Tensor& z) { return target ? target(z) : z; }

torch::Tensor CpcImage::predict(const torch::Tensor& z) {
  auto p = predictor(context(z)) * config_.emb_scale;  // (B, K′·T, Gh, Gw)
  const int64_t steps = config_.prediction_steps - config_.skip_steps;
  return p.view({p.size(0), steps, p.size(1) / steps, p.size(2), p.size(3)});
}

StepOutput CpcImage::contrastive_loss(const torch::Tensor& z) {
  TORCH_CHECK(z.dim() == 4, "cpc_image: z must be (B, D, Gh, Gw), got ", z.sizes());
  const int64_t B = z.size(0), gh = z.size(2), gw = z.size(3);
  const int64_t K = config_.prediction_steps, skip = config_.skip_steps;
  check<ConfigError>(gh > K,
                     "cpc_image: method.prediction_steps {} needs a grid of more than {} rows, got "
                     "{}",
                     K, K, gh);
  auto t = targets(z);
  const int64_t T = t.size(1);
  auto pool = t.permute({0, 2, 3, 1}).reshape({B * gh * gw, T});  // patch n = (b·Gh + i)·Gw + j
  int64_t offset = 0;
  if (dist::world().size() > 1) {
    // Every rank's targets are candidates (gradients flow back to their ranks); this rank's
    // patches sit at rank·B·Gh·Gw in the gathered pool.
    pool = dist::all_gather(pool);
    offset = dist::world().rank() * B * gh * gw;
  }
  auto predictions = predict(z);  // (B, K′, T, Gh, Gw)
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(z.device());
  StepOutput out;
  torch::Tensor total;
  for (int64_t k = skip + 1; k <= K; ++k) {
    const int64_t rows = gh - k;
    // Predictions from rows i < Gh − k for rows i + k: (M, T), M = B·(Gh − k)·Gw.
    auto p = predictions.select(1, k - skip - 1).narrow(2, 0, rows).permute({0, 2, 3, 1});
    p = p.reshape({B * rows * gw, T});
    auto positive = (torch::arange(B, long_opts) * (gh * gw)).view({B, 1, 1}) +
                    ((torch::arange(rows, long_opts) + k) * gw).view({1, rows, 1}) +
                    torch::arange(gw, long_opts).view({1, 1, gw});
    positive = positive.flatten() + offset;  // (M)
    // InfoNCE over every patch of the (global) batch: the positive's column against all others,
    // τ = 1 on the scaled dot products (the appendix's cross-entropy on preds · targetsᵀ).
    auto logits = torch::matmul(p, pool.t());  // (M, W·B·Gh·Gw)
    auto loss_k = torch::nn::functional::cross_entropy(logits, positive);
    total = total.defined() ? total + loss_k : loss_k;
    torch::NoGradGuard no_grad;
    out.metrics[fmt::format("loss_{}", k)] = loss_k.item<double>();
    out.metrics[fmt::format("acc_{}", k)] =
        logits.argmax(1).eq(positive).to(torch::kDouble).mean().item<double>();
  }
  out.loss = total / static_cast<double>(K - skip);
  out.metrics["cpc_loss"] = out.loss.item<double>();
  return out;
}

StepOutput CpcImage::step(const Batch& batch) {
  const torch::Tensor& x = batch.views.empty() ? batch.input : batch.views[0];
  check<DataError>(x.defined() && x.dim() == 4,
                   "cpc_image: the batch must carry images (B, C, H, W) as input or views[0]");
  check<DataError>(x.size(1) == config_.encoder.in_channels,
                   "cpc_image: images have {} channels, method.encoder.in_channels is {}",
                   x.size(1), config_.encoder.in_channels);
  check_grid(x.size(2), x.size(3));
  auto z = encode(patches(x, is_training()));  // (B, D, Gh, Gw)
  StepOutput out = contrastive_loss(z);
  if (probe) out.loss = out.loss + probe->forward(z.mean({2, 3}), batch.labels, out.metrics);
  return out;
}

torch::Tensor CpcImage::features(const torch::Tensor& input, const std::string& kind) {
  check<ConfigError>(kind == "encoder" || kind == "context" || kind == "grid",
                     "features: cpc_image has 'encoder' (patch vectors z averaged over the grid, "
                     "the representation), 'context' (c averaged) and 'grid' (every z of the "
                     "grid, concatenated), got '{}'",
                     kind);
  TORCH_CHECK(input.dim() == 4, "cpc_image: input must be (B, C, H, W), got ", input.sizes());
  check<ConfigError>(input.size(2) >= config_.patch_size && input.size(3) >= config_.patch_size,
                     "cpc_image: images of {}×{} are smaller than method.patch_size {}",
                     input.size(2), input.size(3), config_.patch_size);
  auto z = encode(extract_patches(input, config_.patch_size, config_.patch_stride));
  if (kind == "grid") return z.flatten(1);  // (B, D·Gh·Gw), channel-major
  return (kind == "encoder" ? z : context(z)).mean({2, 3});
}

}  // namespace contra::method
