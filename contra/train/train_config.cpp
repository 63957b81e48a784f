#include "contra/train/train_config.h"

#include <cmath>

#include "contra/core/error.h"

namespace contra::train {

void OptimConfig::validate() const {
  check<ConfigError>(name == "adam" || name == "adamw" || name == "sgd" || name == "lars",
                     "name: unknown optimizer '{}' (expected adam, adamw, sgd or lars)", name);
  check<ConfigError>(lr > 0 && std::isfinite(lr), "lr: must be > 0 (got {})", lr);
  check<ConfigError>(weight_decay >= 0, "weight_decay: must be >= 0 (got {})", weight_decay);
  check<ConfigError>(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1,
                     "beta1: betas must be in [0, 1) (got {}, {})", beta1, beta2);
  check<ConfigError>(eps > 0, "eps: must be > 0 (got {})", eps);
  check<ConfigError>(decay_bias_and_norm || name != "lars",
                     "decay_bias_and_norm: lars has its own switch, lars_exclude_bias_and_norm");
  check<ConfigError>(momentum >= 0 && momentum < 1, "momentum: must be in [0, 1) (got {})",
                     momentum);
  check<ConfigError>(schedule == "constant" || schedule == "cosine",
                     "schedule: unknown '{}' (expected constant or cosine)", schedule);
  check<ConfigError>(warmup_steps >= 0, "warmup_steps: must be >= 0 (got {})", warmup_steps);
  check<ConfigError>(min_lr_ratio >= 0 && min_lr_ratio <= 1,
                     "min_lr_ratio: must be in [0, 1] (got {})", min_lr_ratio);
  check<ConfigError>(lars_eta > 0 && std::isfinite(lars_eta), "lars_eta: must be > 0 (got {})",
                     lars_eta);
  check<ConfigError>(clip_grad_norm >= 0, "clip_grad_norm: must be >= 0 (got {})", clip_grad_norm);
}

void TrainConfig::validate() const {
  check<ConfigError>(steps >= 1, "steps: must be >= 1 (got {})", steps);
  check<ConfigError>(batch_size >= 1, "batch_size: must be >= 1 (got {})", batch_size);
  check<ConfigError>(accumulation >= 1, "accumulation: must be >= 1 (got {})", accumulation);
  check<ConfigError>(speakers_per_batch >= 0, "speakers_per_batch: must be >= 0 (got {})",
                     speakers_per_batch);
  check<ConfigError>(speakers_per_batch == 0 || batch_size % speakers_per_batch == 0,
                     "speakers_per_batch: must divide batch_size (got {} for batch_size {})",
                     speakers_per_batch, batch_size);
  check<ConfigError>(threads >= 0, "threads: must be >= 0 (got {})", threads);
  check<ConfigError>(log_every >= 1, "log_every: must be >= 1 (got {})", log_every);
  check<ConfigError>(checkpoint_every >= 0, "checkpoint_every: must be >= 0 (got {})",
                     checkpoint_every);
  check<ConfigError>(keep_checkpoints >= 1, "keep_checkpoints: must be >= 1 (got {})",
                     keep_checkpoints);
  check<ConfigError>(loader_threads >= 1 && loader_threads <= 64,
                     "loader_threads: must be in 1..64 (got {})", loader_threads);
  check<ConfigError>(prefetch >= 1 && prefetch <= 1024, "prefetch: must be in 1..1024 (got {})",
                     prefetch);
  check<ConfigError>(max_seconds >= 0, "max_seconds: must be >= 0 (got {})", max_seconds);
  check<ConfigError>(dist_timeout > 0 && std::isfinite(dist_timeout),
                     "dist_timeout: must be > 0 seconds (got {})", dist_timeout);
}

double learning_rate(const OptimConfig& c, std::int64_t step, std::int64_t total_steps) {
  if (c.warmup_steps > 0 && step < c.warmup_steps) {
    return c.lr * static_cast<double>(step + 1) / static_cast<double>(c.warmup_steps);
  }
  if (c.schedule == "constant") return c.lr;
  std::int64_t span = std::max<std::int64_t>(1, total_steps - c.warmup_steps);
  double progress =
      std::min(1.0, static_cast<double>(step - c.warmup_steps) / static_cast<double>(span));
  double floor = c.lr * c.min_lr_ratio;
  return floor + (c.lr - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace contra::train
