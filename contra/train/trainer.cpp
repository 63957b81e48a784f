#include "contra/train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <type_traits>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/core/logging.h"
#include "contra/core/progress.h"
#include "contra/core/runtime.h"
#include "contra/data/prefetch_loader.h"
#include "contra/data/sentences.h"
#include "contra/dist/collectives.h"
#include "contra/nn/batch_norm.h"
#include "contra/train/checkpoint.h"
#include "contra/train/lars.h"
#include "contra/viz/tensorboard.h"

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

// Forgets the optimizer's per-parameter state (momentum, moments) of `p`, so a re-initialised
// parameter starts afresh. The state map is keyed by the TensorImpl's address, as a string in
// LibTorch 1.x and as a void* in 2.x.
template <class Map>
void erase_state(Map& state, const torch::Tensor& p) {
  using Key = typename Map::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    // `ostream << pointer`, what LibTorch 1.x's c10::guts::to_string writes (gone in 2.x).
    std::ostringstream text;
    text << static_cast<const void*>(p.unsafeGetTensorImpl());
    state.erase(text.str());
  } else {
    state.erase(static_cast<Key>(p.unsafeGetTensorImpl()));
  }
}

void clear_optimizer_state(torch::optim::Optimizer& optimizer, const torch::Tensor& p) {
  erase_state(optimizer.state(), p);
}
}  // namespace

namespace {

// Rank 0's outcome of a step that only it performs (opening the run, writing a checkpoint), sent to
// every rank: "" when it worked, else "<kind>:<message>". Rank 0 rethrows its own exception; the
// others throw the same kind of error, saying it happened on rank 0.
std::string error_kind(const std::exception& e) {
  if (dynamic_cast<const ConfigError*>(&e)) return "config";
  if (dynamic_cast<const DataError*>(&e)) return "data";
  if (dynamic_cast<const IoError*>(&e)) return "io";
  return "error";
}

void share_outcome(const dist::Group& group, std::exception_ptr error, const std::string& what) {
  if (group.size() == 1) {
    if (error) std::rethrow_exception(error);
    return;
  }
  std::string status;
  if (group.is_main() && error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      status = error_kind(e) + ":" + e.what();
    }
  }
  status = dist::broadcast_string(status);
  if (group.is_main() && error) std::rethrow_exception(error);
  if (status.empty()) return;
  const auto colon = status.find(':');
  const std::string kind = status.substr(0, colon);
  const std::string message = fmt::format("rank 0 failed {}: {}", what, status.substr(colon + 1));
  if (kind == "config") throw ConfigError(message);
  if (kind == "data") throw DataError(message);
  if (kind == "io") throw IoError(message);
  throw Error(message);
}

// FNV-1a of the metric names, folded to 20 bits (so that its square, summed over ranks, is exact in
// a double).
double key_hash(const std::map<std::string, double>& metrics) {
  std::uint64_t h = 1469598103934665603ull;
  for (const auto& [k, v] : metrics) {
    for (char c : k + "\n") h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  return static_cast<double>((h ^ (h >> 20) ^ (h >> 40)) & 0xfffff);
}

// The mean over the ranks of each metric, over the ranks that report it. Ranks normally report the
// same names (one all-reduce); when they do not (an online probe with no labelled item on some
// rank), the names are exchanged first.
std::map<std::string, double> mean_over_ranks(const std::map<std::string, double>& metrics) {
  dist::Group& group = dist::world();
  const double n = static_cast<double>(metrics.size()), h = key_hash(metrics);
  const double w = static_cast<double>(group.size());
  std::vector<double> check = dist::all_reduce_sum(std::vector<double>{n, n * n, h, h * h});
  std::vector<std::string> names;
  if (check[1] * w == check[0] * check[0] && check[3] * w == check[2] * check[2]) {
    for (const auto& [k, v] : metrics) names.push_back(k);
  } else {
    // The union of the names: every rank's list through a padded all-gather.
    std::string mine;
    for (const auto& [k, v] : metrics) mine += k + "\n";
    torch::Tensor length = torch::tensor({static_cast<std::int64_t>(mine.size())}, torch::kLong);
    std::int64_t size = 0;
    for (const auto& t : group.all_gather(length.to(group.device()))) {
      size = std::max(size, t.cpu().item<std::int64_t>());
    }
    torch::Tensor bytes = torch::zeros({size}, torch::kUInt8);
    if (!mine.empty()) std::memcpy(bytes.data_ptr<std::uint8_t>(), mine.data(), mine.size());
    std::set<std::string> all;
    for (const auto& t : group.all_gather(bytes.to(group.device()))) {
      torch::Tensor c = t.cpu().contiguous();
      std::string text(reinterpret_cast<const char*>(c.data_ptr<std::uint8_t>()),
                       static_cast<std::size_t>(c.numel()));
      std::stringstream in(text);
      std::string name;
      while (std::getline(in, name)) {
        if (!name.empty() && name[0] != '\0') all.insert(name);
      }
    }
    names.assign(all.begin(), all.end());
  }
  std::vector<double> values;  // value, present — per name
  for (const auto& name : names) {
    auto it = metrics.find(name);
    const bool present = it != metrics.end() && std::isfinite(it->second);
    values.push_back(present ? it->second : 0.0);
    values.push_back(present ? 1.0 : 0.0);
  }
  values = dist::all_reduce_sum(values);
  std::map<std::string, double> out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (values[2 * i + 1] > 0) out[names[i]] = values[2 * i] / values[2 * i + 1];
  }
  return out;
}

}  // namespace

TrainSummary Trainer::fit(const std::function<method::Batch(std::int64_t)>& make_batch, bool resume,
                          const PhaseHook& phases) {
  check<ConfigError>(phases.steps >= 0, "trainer: phase length must be >= 0 (got {})",
                     phases.steps);
  dist::Group& group = dist::world();
  const int world = group.size();
  const bool distributed = world > 1;
  const bool main = group.is_main();
  set_threads(dist::threads_per_rank(static_cast<int>(train_.threads), group));
  c10::Device device = dist::rank_device(parse_device(train_.device), group);
  method_->to(device);
  method_->train();
  const std::int64_t synced = nn::set_sync_batch_norm(*method_, train_.sync_batch_norm);
  if (train_.sync_batch_norm && distributed) {
    log().info("sync_batch_norm: {} BatchNorm layers normalise over all {} ranks", synced, world);
  }
  auto optimizer = make_optimizer(optim_, method_->trainable_parameters());
  const std::string metrics_path = run_dir_ + "/metrics.jsonl";

  // Rank 0 opens the run directory and decides where training starts; every rank then loads the
  // same checkpoint bytes (no shared file system needed beyond rank 0's).
  TrainSummary summary;
  std::string checkpoint_bytes, existing;
  {
    std::exception_ptr error;
    if (main) {
      try {
        make_dirs(run_dir_);
        write_file_atomic(run_dir_ + "/config.yaml", config_yaml_);
        existing = latest_checkpoint(run_dir_);
        if (!resume && !existing.empty()) {
          throw IoError(fmt::format(
              "run directory '{}' already has checkpoints (use --resume to continue, or "
              "choose another run name)",
              run_dir_));
        }
        if (resume && !existing.empty()) checkpoint_bytes = read_file(existing);
      } catch (...) {
        error = std::current_exception();
      }
    }
    share_outcome(group, error, "opening the run directory");
  }
  if (distributed) {
    existing = dist::broadcast_string(existing);
    if (!existing.empty()) checkpoint_bytes = dist::broadcast_string(checkpoint_bytes);
  }
  torch::Tensor rank_rng;  // (W, state) every rank's CPU generator state at the checkpoint
  if (resume && !existing.empty()) {
    CheckpointMeta meta = load_checkpoint_data(checkpoint_bytes, existing, *method_,
                                               optimizer.get(), /*restore_rng=*/true);
    if (distributed) rank_rng = checkpoint_extra(checkpoint_bytes, "rng_ranks");
    checkpoint_bytes.clear();
    summary.first_step = meta.step;
    summary.checkpoint = existing;
    log().info("resuming {} from step {}", run_dir_, meta.step);
  }
  if (distributed) {
    // Identical weights and buffers everywhere; then each rank its own random stream (dropout,
    // negatives, shuffles): seeded by (seed, rank), or on resume the rank's state saved with the
    // checkpoint, so a resumed run continues as the uninterrupted one would.
    dist::broadcast_module(*method_);
    if (rank_rng.defined() && rank_rng.size(0) == world) {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(rank_rng[group.rank()].clone());
    } else {
      if (rank_rng.defined() || summary.first_step > 0) {
        log().warn("the checkpoint has no random state for {} ranks: each rank is re-seeded",
                   world);
      }
      seed_everything(data::mix_seed(static_cast<std::uint64_t>(train_.seed),
                                     static_cast<std::uint64_t>(group.rank()) + 1,
                                     static_cast<std::uint64_t>(summary.first_step)));
    }
  }
  summary.steps = summary.first_step;
  if (summary.first_step >= train_.steps) return summary;

  std::ofstream metrics;
  std::optional<viz::EventWriter> events;  // rank 0
  {
    std::exception_ptr error;
    if (main) {
      try {
        truncate_metrics(metrics_path, summary.first_step);
        metrics.open(metrics_path, std::ios::app);
        if (!metrics) throw IoError(fmt::format("writing '{}': cannot open", metrics_path));
        // The same scalars for TensorBoard (docs/visualize.md); a resumed run drops the events
        // the previous process logged after the checkpoint, as metrics.jsonl does.
        events.emplace(run_dir_ + "/tensorboard");
        if (summary.first_step > 0) events->add_session_start(summary.first_step + 1);
      } catch (...) {
        error = std::current_exception();
      }
    }
    share_outcome(group, error, "opening metrics.jsonl");
  }

  const std::int64_t accum = train_.accumulation;
  const std::int64_t items_per_step = train_.batch_size * accum * world;
  // One loader per phase (the whole run without a phase hook): a phase's batches are built only
  // after its hook ran.
  std::optional<data::PrefetchLoader> loader;
  double loader_wait_done = 0;  // wait of the finished phases' loaders
  auto loader_wait = [&] { return loader_wait_done + (loader ? loader->wait_seconds() : 0.0); };
  auto start_phase = [&](std::int64_t step) {
    std::int64_t end = train_.steps;
    if (phases.steps > 0) {
      const std::int64_t phase = step / phases.steps;
      end = std::min(end, (phase + 1) * phases.steps);
      if (loader) loader_wait_done += loader->wait_seconds();
      loader.reset();
      if (phases.begin) {
        for (const auto& p : phases.begin(phase, step)) clear_optimizer_state(*optimizer, p);
      }
    }
    loader.emplace(make_batch, step * accum, end * accum, static_cast<int>(train_.loader_threads),
                   static_cast<int>(train_.prefetch));
  };
  auto params = method_->trainable_parameters();
  std::optional<Progress> progress;
  if (main) {
    progress.emplace("train", train_.steps, "step");
    progress->set(summary.first_step);
  }

  using clock = std::chrono::steady_clock;
  auto run_start = clock::now(), interval_start = run_start;
  double interval_loss = 0, interval_reduce_s = 0;
  std::map<std::string, double> interval_metrics;
  std::int64_t interval_steps = 0;
  double interval_wait_start = 0;

  for (std::int64_t step = summary.first_step; step < train_.steps; ++step) {
    if (!loader || (phases.steps > 0 && step % phases.steps == 0)) start_phase(step);
    double lr = learning_rate(optim_, step, train_.steps);
    set_learning_rate(*optimizer, lr);
    optimizer->zero_grad();
    double step_loss = 0, bad_value = 0;
    std::int64_t bad_micro = -1;
    std::map<std::string, double> step_metrics;
    for (std::int64_t micro = 0; micro < accum; ++micro) {
      auto batch = loader->next();
      if (!batch) throw Error("trainer: the loader ran out of batches early");
      method::StepOutput out = method_->step(batch->to(device));
      double value = out.loss.item<double>();
      if (!std::isfinite(value)) {
        if (!distributed) {
          throw NumericalError(fmt::format(
              "training diverged: loss is {} at step {} (micro-batch {}); the last good "
              "checkpoint is '{}' (lower optim.lr or set optim.clip_grad_norm)",
              value, step + 1, micro, summary.checkpoint.empty() ? "none" : summary.checkpoint));
        }
        // Distributed: backward still runs (the other ranks' gathers wait for it); the step is
        // refused below on every rank together.
        if (bad_micro < 0) {
          bad_micro = micro;
          bad_value = value;
        }
      }
      (accum > 1 ? out.loss / static_cast<double>(accum) : out.loss).backward();
      step_loss += value / static_cast<double>(accum);
      for (const auto& [k, v] : out.metrics) step_metrics[k] += v / static_cast<double>(accum);
    }
    bool out_of_time =
        train_.max_seconds > 0 && std::chrono::duration<double>(clock::now() - run_start).count() >=
                                      static_cast<double>(train_.max_seconds);
    if (distributed) {
      // One small all-reduce: the mean loss and metrics, who diverged, rank 0's clock.
      std::vector<double> stats{bad_micro < 0 ? step_loss : 0.0, main && out_of_time ? 1.0 : 0.0};
      for (int r = 0; r < world; ++r) stats.push_back(r == group.rank() && bad_micro >= 0);
      stats = dist::all_reduce_sum(stats);
      std::vector<int> bad_ranks;
      for (int r = 0; r < world; ++r) {
        if (stats[static_cast<std::size_t>(2 + r)] > 0) bad_ranks.push_back(r);
      }
      if (!bad_ranks.empty()) {
        throw NumericalError(fmt::format(
            "training diverged: the loss is not finite on rank {} at step {}{}; the last good "
            "checkpoint is '{}' (lower optim.lr or set optim.clip_grad_norm)",
            fmt::join(bad_ranks, ", "), step + 1,
            bad_micro >= 0 ? fmt::format(" (here: {} at micro-batch {})", bad_value, bad_micro)
                           : std::string(),
            summary.checkpoint.empty() ? "none" : summary.checkpoint));
      }
      step_loss = stats[0] / world;
      out_of_time = stats[1] > 0;
      step_metrics = mean_over_ranks(step_metrics);
      auto reduce_start = clock::now();
      dist::average_gradients(params);
      interval_reduce_s += std::chrono::duration<double>(clock::now() - reduce_start).count();
    }
    for (const auto& [k, v] : step_metrics) interval_metrics[k] += v;
    if (optim_.clip_grad_norm > 0) torch::nn::utils::clip_grad_norm_(params, optim_.clip_grad_norm);
    optimizer->step();
    method_->after_optimizer_step(step);
    summary.losses.push_back(step_loss);
    interval_loss += step_loss;
    ++interval_steps;
    const std::int64_t done = step + 1;
    summary.steps = done;

    bool last = done == train_.steps || out_of_time;
    if (done % train_.log_every == 0 || last) {
      double seconds = std::chrono::duration<double>(clock::now() - interval_start).count();
      nlohmann::json row = {
          {"step", done},
          {"loss", interval_loss / interval_steps},
          {"lr", lr},
          {"items_per_s", items_per_step * interval_steps / std::max(seconds, 1e-9)},
          {"ms_per_batch", 1000.0 * seconds / (interval_steps * accum)},
          {"loader_wait_s", loader_wait() - interval_wait_start}};
      if (distributed) {
        row["ranks"] = world;
        row["allreduce_ms"] = 1000.0 * interval_reduce_s / interval_steps;
      }
      summary.metrics.clear();
      for (const auto& [k, v] : interval_metrics) {
        row[k] = v / interval_steps;
        summary.metrics[k] = v / interval_steps;
      }
      summary.loss = interval_loss / interval_steps;
      std::exception_ptr write_error;
      if (main) {
        metrics << row.dump() << "\n";
        metrics.flush();
        if (!metrics) {
          write_error = std::make_exception_ptr(
              IoError(fmt::format("writing '{}': write failed (disk full?)", metrics_path)));
        }
        try {
          std::map<std::string, double> scalars;
          for (const auto& [k, v] : row.items()) {
            if (k != "step" && v.is_number()) scalars[k] = v.get<double>();
          }
          events->add_scalars(done, scalars);
          events->flush();
        } catch (...) {
          if (!write_error) write_error = std::current_exception();
        }
      }
      share_outcome(group, write_error, "writing metrics.jsonl");
      if (main) {
        std::string extra = fmt::format("loss {:.4f} lr {:.2e} {:.1f} items/s", summary.loss, lr,
                                        row["items_per_s"].get<double>());
        for (const char* key : {"acc_1", "acc_4", "acc_12", "instance_acc", "online_acc"}) {
          if (interval_metrics.count(key))
            extra += fmt::format(" {} {:.3f}", key, summary.metrics[key]);
        }
        progress->set(done, extra);
      }
      interval_start = clock::now();
      interval_wait_start = loader_wait();
      interval_loss = 0;
      interval_reduce_s = 0;
      interval_steps = 0;
      interval_metrics.clear();
    }
    if ((train_.checkpoint_every > 0 && done % train_.checkpoint_every == 0) || last) {
      // Rank 0 writes; the others wait for the outcome (the barrier around the write).
      std::map<std::string, torch::Tensor> extra;
      if (distributed) {
        // Every rank's random state, for an exact resume (the same size on every rank).
        torch::Tensor state;
        {
          auto gen = at::detail::getDefaultCPUGenerator();
          std::lock_guard<std::mutex> lock(gen.mutex());
          state = gen.get_state();
        }
        extra["rng_ranks"] = torch::stack(group.all_gather(state.to(group.device()))).cpu();
      }
      std::exception_ptr error;
      if (main) {
        try {
          summary.checkpoint = save_checkpoint(run_dir_, *method_, *optimizer, done, config_yaml_,
                                               train_.keep_checkpoints, extra);
        } catch (...) {
          error = std::current_exception();
        }
      }
      share_outcome(group, error, fmt::format("writing the checkpoint of step {}", done));
      if (distributed) summary.checkpoint = dist::broadcast_string(summary.checkpoint);
    }
    if (out_of_time && done < train_.steps) {
      summary.stopped_early = true;
      log().info("stopping after {} s (train.max_seconds) at step {}", train_.max_seconds, done);
      break;
    }
  }
  if (progress) progress->finish();
  summary.seconds = std::chrono::duration<double>(clock::now() - run_start).count();
  summary.items_per_second =
      static_cast<double>((summary.steps - summary.first_step) * items_per_step) /
      std::max(summary.seconds, 1e-9);
  summary.loader_wait_seconds = loader_wait();
  return summary;
}

}  // namespace contra::train
