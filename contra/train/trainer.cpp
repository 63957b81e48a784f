#include "contra/train/trainer.h"

#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/core/logging.h"
#include "contra/core/progress.h"
#include "contra/core/runtime.h"
#include "contra/data/prefetch_loader.h"
#include "contra/train/checkpoint.h"
#include "contra/train/lars.h"

namespace contra::train {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimConfig& c,
                                                        const std::vector<torch::Tensor>& params) {
  check<ConfigError>(!params.empty(), "optimizer: the method has no trainable parameters");
  // One group, or with decay_bias_and_norm off: [dim >= 2 (decayed), dim <= 1 (not decayed)].
  auto groups = [&](const auto& options) {
    using Options = std::decay_t<decltype(options)>;
    std::vector<torch::optim::OptimizerParamGroup> out;
    if (c.decay_bias_and_norm || c.weight_decay == 0) {
      out.emplace_back(params, std::make_unique<Options>(options));
      return out;
    }
    std::vector<torch::Tensor> decayed, kept;
    for (const auto& p : params) (p.dim() <= 1 ? kept : decayed).push_back(p);
    if (!decayed.empty()) out.emplace_back(decayed, std::make_unique<Options>(options));
    if (!kept.empty()) {
      auto no_decay = std::make_unique<Options>(options);
      no_decay->weight_decay(0.0);
      out.emplace_back(kept, std::move(no_decay));
    }
    return out;
  };
  if (c.name == "adam") {
    auto o = torch::optim::AdamOptions(c.lr)
                 .betas({c.beta1, c.beta2})
                 .eps(c.eps)
                 .weight_decay(c.weight_decay);
    return std::make_unique<torch::optim::Adam>(groups(o), o);
  }
  if (c.name == "adamw") {
    auto o = torch::optim::AdamWOptions(c.lr)
                 .betas({c.beta1, c.beta2})
                 .eps(c.eps)
                 .weight_decay(c.weight_decay);
    return std::make_unique<torch::optim::AdamW>(groups(o), o);
  }
  if (c.name == "sgd") {
    auto o = torch::optim::SGDOptions(c.lr).momentum(c.momentum).weight_decay(c.weight_decay);
    return std::make_unique<torch::optim::SGD>(groups(o), o);
  }
  if (c.name == "lars") {
    return std::make_unique<Lars>(params, LarsOptions(c.lr)
                                              .momentum(c.momentum)
                                              .weight_decay(c.weight_decay)
                                              .eta(c.lars_eta)
                                              .exclude_bias_and_norm(c.lars_exclude_bias_and_norm));
  }
  throw ConfigError(fmt::format(
      "optim.name: unknown optimizer '{}' (expected adam, adamw, sgd or lars)", c.name));
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) {
    auto& options = group.options();
    if (auto* adam = dynamic_cast<torch::optim::AdamOptions*>(&options)) {
      adam->lr(lr);
    } else if (auto* adamw = dynamic_cast<torch::optim::AdamWOptions*>(&options)) {
      adamw->lr(lr);
    } else if (auto* sgd = dynamic_cast<torch::optim::SGDOptions*>(&options)) {
      sgd->lr(lr);
    } else if (auto* lars = dynamic_cast<LarsOptions*>(&options)) {
      lars->lr(lr);
    }
  }
}

Trainer::Trainer(std::shared_ptr<method::Method> method, TrainConfig train, OptimConfig optim,
                 std::string run_dir, std::string config_yaml)
    : method_(std::move(method)),
      train_(std::move(train)),
      optim_(std::move(optim)),
      run_dir_(std::move(run_dir)),
      config_yaml_(std::move(config_yaml)) {
  train_.validate();
  optim_.validate();
}

namespace {
// Keeps the rows of metrics.jsonl up to `step` (a resumed run rewrites what came after).
void truncate_metrics(const std::string& path, std::int64_t step) {
  if (!path_exists(path)) return;
  std::stringstream in(read_file(path));
  std::string kept, line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      if (nlohmann::json::parse(line).value("step", std::int64_t(0)) <= step) kept += line + "\n";
    } catch (const nlohmann::json::exception&) {
      // a torn last line from a crash: drop it
    }
  }
  write_file_atomic(path, kept);
}
}  // namespace

TrainSummary Trainer::fit(const std::function<method::Batch(std::int64_t)>& make_batch,
                          bool resume) {
  set_threads(static_cast<int>(train_.threads));
  c10::Device device = parse_device(train_.device);
  method_->to(device);
  method_->train();
  auto optimizer = make_optimizer(optim_, method_->trainable_parameters());
  make_dirs(run_dir_);
  write_file_atomic(run_dir_ + "/config.yaml", config_yaml_);
  const std::string metrics_path = run_dir_ + "/metrics.jsonl";

  TrainSummary summary;
  std::string existing = latest_checkpoint(run_dir_);
  if (resume && !existing.empty()) {
    CheckpointMeta meta =
        load_checkpoint(existing, *method_, optimizer.get(), /*restore_rng=*/true);
    summary.first_step = meta.step;
    summary.checkpoint = existing;
    log().info("resuming {} from step {}", run_dir_, meta.step);
  } else if (!resume && !existing.empty()) {
    throw IoError(
        fmt::format("run directory '{}' already has checkpoints (use --resume to continue, or "
                    "choose another run name)",
                    run_dir_));
  }
  truncate_metrics(metrics_path, summary.first_step);
  summary.steps = summary.first_step;
  if (summary.first_step >= train_.steps) return summary;

  std::ofstream metrics(metrics_path, std::ios::app);
  if (!metrics) throw IoError(fmt::format("writing '{}': cannot open", metrics_path));

  const std::int64_t accum = train_.accumulation;
  const std::int64_t items_per_step = train_.batch_size * accum;
  data::PrefetchLoader loader(make_batch, summary.first_step * accum, train_.steps * accum,
                              static_cast<int>(train_.loader_threads),
                              static_cast<int>(train_.prefetch));
  auto params = method_->trainable_parameters();
  Progress progress("train", train_.steps, "step");
  progress.set(summary.first_step);

  using clock = std::chrono::steady_clock;
  auto run_start = clock::now(), interval_start = run_start;
  double interval_loss = 0;
  std::map<std::string, double> interval_metrics;
  std::int64_t interval_steps = 0;
  double interval_wait_start = 0;

  for (std::int64_t step = summary.first_step; step < train_.steps; ++step) {
    double lr = learning_rate(optim_, step, train_.steps);
    set_learning_rate(*optimizer, lr);
    optimizer->zero_grad();
    double step_loss = 0;
    for (std::int64_t micro = 0; micro < accum; ++micro) {
      auto batch = loader.next();
      if (!batch) throw Error("trainer: the loader ran out of batches early");
      method::StepOutput out = method_->step(batch->to(device));
      double value = out.loss.item<double>();
      if (!std::isfinite(value)) {
        throw NumericalError(fmt::format(
            "training diverged: loss is {} at step {} (micro-batch {}); the last good checkpoint "
            "is "
            "'{}' (lower optim.lr or set optim.clip_grad_norm)",
            value, step + 1, micro, summary.checkpoint.empty() ? "none" : summary.checkpoint));
      }
      (accum > 1 ? out.loss / static_cast<double>(accum) : out.loss).backward();
      step_loss += value / static_cast<double>(accum);
      for (const auto& [k, v] : out.metrics) interval_metrics[k] += v / static_cast<double>(accum);
    }
    if (optim_.clip_grad_norm > 0) torch::nn::utils::clip_grad_norm_(params, optim_.clip_grad_norm);
    optimizer->step();
    method_->after_optimizer_step(step);
    summary.losses.push_back(step_loss);
    interval_loss += step_loss;
    ++interval_steps;
    const std::int64_t done = step + 1;
    summary.steps = done;

    bool out_of_time =
        train_.max_seconds > 0 && std::chrono::duration<double>(clock::now() - run_start).count() >=
                                      static_cast<double>(train_.max_seconds);
    bool last = done == train_.steps || out_of_time;
    if (done % train_.log_every == 0 || last) {
      double seconds = std::chrono::duration<double>(clock::now() - interval_start).count();
      nlohmann::json row = {
          {"step", done},
          {"loss", interval_loss / interval_steps},
          {"lr", lr},
          {"items_per_s", items_per_step * interval_steps / std::max(seconds, 1e-9)},
          {"ms_per_batch", 1000.0 * seconds / (interval_steps * accum)},
          {"loader_wait_s", loader.wait_seconds() - interval_wait_start}};
      summary.metrics.clear();
      for (const auto& [k, v] : interval_metrics) {
        row[k] = v / interval_steps;
        summary.metrics[k] = v / interval_steps;
      }
      summary.loss = interval_loss / interval_steps;
      metrics << row.dump() << "\n";
      metrics.flush();
      if (!metrics)
        throw IoError(fmt::format("writing '{}': write failed (disk full?)", metrics_path));
      std::string extra = fmt::format("loss {:.4f} lr {:.2e} {:.1f} items/s", summary.loss, lr,
                                      row["items_per_s"].get<double>());
      for (const char* key : {"acc_1", "acc_4", "acc_12", "instance_acc", "online_acc"}) {
        if (interval_metrics.count(key))
          extra += fmt::format(" {} {:.3f}", key, summary.metrics[key]);
      }
      progress.set(done, extra);
      interval_start = clock::now();
      interval_wait_start = loader.wait_seconds();
      interval_loss = 0;
      interval_steps = 0;
      interval_metrics.clear();
    }
    if ((train_.checkpoint_every > 0 && done % train_.checkpoint_every == 0) || last) {
      summary.checkpoint = save_checkpoint(run_dir_, *method_, *optimizer, done, config_yaml_,
                                           train_.keep_checkpoints);
    }
    if (out_of_time && done < train_.steps) {
      summary.stopped_early = true;
      log().info("stopping after {} s (train.max_seconds) at step {}", train_.max_seconds, done);
      break;
    }
  }
  progress.finish();
  summary.seconds = std::chrono::duration<double>(clock::now() - run_start).count();
  summary.items_per_second =
      static_cast<double>((summary.steps - summary.first_step) * items_per_step) /
      std::max(summary.seconds, 1e-9);
  summary.loader_wait_seconds = loader.wait_seconds();
  return summary;
}

}  // namespace contra::train
