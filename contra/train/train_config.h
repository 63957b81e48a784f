#pragma once
/// Settings of the training loop and optimizer (the `train:` and `optim:` sections of a recipe).
#include <cstdint>
#include <string>

namespace contra::train {

struct OptimConfig {
  std::string name = "adam";  // adam | adamw | sgd | lars
  double lr = 2e-4;           // peak learning rate (CPC: Adam 2e-4)
  double weight_decay = 0.0;
  // adam / adamw / sgd: false = no weight decay for parameters of dim <= 1 (biases, norm gains,
  // CLIP's logit scale and class token), as CLIP and most Transformer recipes train.
  bool decay_bias_and_norm = true;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // adam / adamw
  double momentum = 0.9;                          // sgd / lars (μ)
  std::string schedule = "constant";              // constant | cosine (after warmup)
  std::int64_t warmup_steps = 0;                  // linear warmup from 0 to lr
  double min_lr_ratio = 0.0;                      // cosine floor as a fraction of lr
  double clip_grad_norm = 0.0;                    // 0 = off; else max global L2 norm
  // LARS (lars.h): g ← g + wd·p, r = η·‖p‖/‖g‖ per parameter tensor, v ← μ·v + lr·r·g,
  // p ← p − v; with lars_exclude_bias_and_norm, dim ≤ 1 parameters get v ← μ·v + lr·g instead.
  double lars_eta = 0.001;                 // trust coefficient η (> 0)
  bool lars_exclude_bias_and_norm = true;  // biases and BN γ/β: no decay, no adaptation

  template <class V>
  void visit(V& v) {
    v("name", name, "adam | adamw | sgd | lars");
    v("lr", lr, "peak learning rate (> 0)");
    v("weight_decay", weight_decay, ">= 0");
    v("decay_bias_and_norm", decay_bias_and_norm,
      "adam/adamw/sgd: also decay parameters of dim <= 1 (biases, norm gains, scales)");
    v("beta1", beta1);
    v("beta2", beta2);
    v("eps", eps);
    v("momentum", momentum, "sgd / lars momentum");
    v("schedule", schedule, "constant | cosine (after warmup)");
    v("warmup_steps", warmup_steps, "linear warmup steps");
    v("min_lr_ratio", min_lr_ratio, "cosine floor as a fraction of lr");
    v("clip_grad_norm", clip_grad_norm, "max global gradient L2 norm (0 = off)");
    v("lars_eta", lars_eta, "lars trust coefficient (> 0)");
    v("lars_exclude_bias_and_norm", lars_exclude_bias_and_norm,
      "lars: no decay or adaptation for biases and norm parameters (dim <= 1)");
  }
  void validate() const;
};

struct TrainConfig {
  std::int64_t steps = 1000;      // optimizer steps
  std::int64_t batch_size = 8;    // per micro-batch (and per rank)
  std::int64_t accumulation = 1;  // micro-batches per optimizer step (effective batch = product)
  std::int64_t speakers_per_batch = 0;  // > 0: batches of P speakers × B/P windows (same_speaker)
  std::int64_t threads = 0;             // intra-op threads, 0 = all cores
  std::int64_t seed = 1;
  std::string device = "cpu";  // cpu | cuda | cuda:N
  std::int64_t log_every = 20;
  std::int64_t checkpoint_every = 250;
  std::int64_t keep_checkpoints = 2;
  std::int64_t loader_threads = 1;
  std::int64_t prefetch = 4;
  std::int64_t max_seconds = 0;  // > 0: stop (with a checkpoint) after this much wall time
  // Distributed runs (docs/distributed.md): batch_size is per rank (global batch = batch_size ×
  // ranks × accumulation).
  bool sync_batch_norm = false;  // BatchNorm statistics over the global batch (all ranks)
  double dist_timeout = 300;     // seconds any collective (and the rendezvous) may wait

  template <class V>
  void visit(V& v) {
    v("steps", steps, "optimizer steps");
    v("batch_size", batch_size, "items per micro-batch, per rank in a distributed run");
    v("accumulation", accumulation, "micro-batches per optimizer step");
    v("speakers_per_batch", speakers_per_batch, "0 = any; P = P speakers x batch/P windows");
    v("threads", threads, "intra-op threads (0 = all cores)");
    v("seed", seed, "seed of model init, data order and negatives");
    v("device", device, "cpu | cuda | cuda:N");
    v("log_every", log_every, "steps between log lines / metrics.jsonl rows");
    v("checkpoint_every", checkpoint_every, "steps between checkpoints (0 = only at the end)");
    v("keep_checkpoints", keep_checkpoints, "newest checkpoints kept (>= 1)");
    v("loader_threads", loader_threads, "background batch-building threads");
    v("prefetch", prefetch, "batches built ahead");
    v("max_seconds", max_seconds, "stop after this wall time (0 = no limit)");
    v("sync_batch_norm", sync_batch_norm,
      "distributed: BatchNorm statistics over all ranks' items (SyncBatchNorm)");
    v("dist_timeout", dist_timeout,
      "distributed: seconds a collective may wait for the other ranks before failing (> 0)");
  }
  void validate() const;
};

/// Learning rate at optimizer step `step` (0-based): linear warmup, then constant or cosine to the
/// floor.
double learning_rate(const OptimConfig& config, std::int64_t step, std::int64_t total_steps);

}  // namespace contra::train
