#pragma once
/// The training loop, method-agnostic (DESIGN.md §1): it drives any `Method` through `step` and
/// `after_optimizer_step` and knows nothing else about it.
///
/// Per optimizer step: `accumulation` micro-batches (effective batch = batch × accumulation), each
/// loss divided by the count and back-propagated; optional global-norm clipping; the learning rate
/// of the schedule; the optimizer step; the method's post-step update. Every `log_every` steps: a
/// progress line and a row of `metrics.jsonl` (loss, the method's metrics averaged over the
/// interval, windows/s, ms/batch, lr, loader wait). Every `checkpoint_every` steps and at the end:
/// a checkpoint. A NaN or infinite loss stops training with a NumericalError naming the step; the
/// last good checkpoint is kept.
///
/// Batches are a pure function of their index (the micro-batch counter), so a resumed run sees
/// exactly the data an uninterrupted run would, and with the RNG restored, the same loss curve.
///
/// Distributed (dist::world() has W > 1 ranks; docs/distributed.md): `make_batch` gives this rank's
/// share of each global batch; rank 0's weights are broadcast at the start; gradients are averaged
/// across ranks (bucketed all-reduce) once per optimizer step, after the last micro-batch; the
/// logged loss and metrics are the ranks' means; a non-finite loss on any rank stops every rank;
/// rank 0 alone writes the run directory, and the others wait for the outcome of each checkpoint
/// write. With train.sync_batch_norm the method's contra::nn::BatchNorm layers synchronise.
///
///   Trainer trainer(method, train_cfg, optim_cfg, "runs/x", resolved_yaml);
///   TrainSummary s = trainer.fit([&](int64_t i) { return source.batch(i, 8, 0, seed); },
///   /*resume=*/false);
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "contra/method/method.h"
#include "contra/train/train_config.h"

namespace contra::train {

struct TrainSummary {
  std::int64_t first_step = 0;            // completed steps before this run (resume point)
  std::int64_t steps = 0;                 // completed steps after this run
  double seconds = 0;                     // wall time of this run's steps
  double items_per_second = 0;            // windows (or images) per second over this run
  double loss = 0;                        // mean loss of the last logging interval
  std::map<std::string, double> metrics;  // last interval's mean metrics
  std::vector<double> losses;             // loss of every step of this run (for tests and curves)
  std::string checkpoint;                 // newest checkpoint written
  bool stopped_early = false;             // max_seconds reached
  double loader_wait_seconds = 0;
};

/// Work at the start of each phase of `steps` optimizer steps — DeepCluster's clustering of the
/// whole training set every epoch. `begin(phase, first_step)` runs on every rank before the loader
/// builds any batch of the phase (the loader is rebuilt per phase, so batches may depend on what
/// `begin` computed), after a resume's checkpoint is loaded. It returns the parameters whose
/// optimizer state (momentum, Adam moments) is to be cleared: a re-initialised head.
struct PhaseHook {
  std::int64_t steps = 0;  // 0 = one phase, no hook
  std::function<std::vector<torch::Tensor>(std::int64_t phase, std::int64_t first_step)> begin;
};

class Trainer {
 public:
  Trainer(std::shared_ptr<method::Method> method, TrainConfig train, OptimConfig optim,
          std::string run_dir, std::string config_yaml);

  /// Trains to `train.steps` optimizer steps. With `resume`, continues from the run dir's last
  /// checkpoint (model, optimizer, RNG, step); without it, a run dir that already has checkpoints
  /// is an IoError (nothing is overwritten).
  TrainSummary fit(const std::function<method::Batch(std::int64_t)>& make_batch, bool resume,
                   const PhaseHook& phases = {});

 private:
  std::shared_ptr<method::Method> method_;
  TrainConfig train_;
  OptimConfig optim_;
  std::string run_dir_;
  std::string config_yaml_;
};

/// Builds the configured optimizer (adam, adamw, sgd or lars; see lars.h) over `parameters`.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(
    const OptimConfig& config, const std::vector<torch::Tensor>& parameters);
/// Sets the learning rate of every parameter group.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace contra::train
