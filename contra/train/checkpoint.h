#pragma once
/// Checkpoints (DESIGN.md §6): model (the whole Method module: parameters and buffers such as
/// queues, memory banks and EMA targets), optimizer state, completed step count, RNG state and the
/// resolved config. Written to a temporary file, fsynced, renamed; `checkpoints/last` is then
/// switched to it atomically, so a crash never leaves `last` pointing at a partial file.
#include <cstdint>
#include <map>
#include <string>

#include <torch/optim/optimizer.h>

#include "contra/method/method.h"

namespace contra::train {

struct CheckpointMeta {
  std::int64_t step = 0;    // completed optimizer steps
  std::string config_yaml;  // resolved config of the run
  std::string contra_version;
};

/// Writes `run_dir/checkpoints/step-XXXXXXXX.pt`, points `last` at it and keeps the newest `keep`.
/// Returns the path. Throws IoError (the previous `last` stays valid).
/// `extra` tensors are stored under their names (e.g. every rank's RNG state in a distributed run).
std::string save_checkpoint(const std::string& run_dir, method::Method& method,
                            torch::optim::Optimizer& optimizer, std::int64_t step,
                            const std::string& config_yaml, std::int64_t keep,
                            const std::map<std::string, torch::Tensor>& extra = {});

/// An `extra` tensor of a checkpoint's bytes, or an undefined tensor when it has none of that name.
torch::Tensor checkpoint_extra(const std::string& data, const std::string& name);

/// Path of the newest complete checkpoint of a run dir (`checkpoints/last`), or "" when none.
std::string latest_checkpoint(const std::string& run_dir);

/// A run dir or a checkpoint file → the checkpoint file. DataError when there is none.
std::string resolve_checkpoint(const std::string& run_dir_or_file);

/// Reads step, config and version without loading weights. DataError for unreadable files.
CheckpointMeta read_checkpoint_meta(const std::string& path);

/// Loads weights (and buffers) into `method`; with `optimizer`, its state too; restores the CPU RNG
/// when `restore_rng`. Throws DataError naming the file when shapes or names do not match.
CheckpointMeta load_checkpoint(const std::string& path, method::Method& method,
                               torch::optim::Optimizer* optimizer = nullptr,
                               bool restore_rng = false);

/// The same from a checkpoint's bytes in memory (a distributed run: rank 0 reads the file and
/// broadcasts it); `name` is the file name errors give.
CheckpointMeta load_checkpoint_data(const std::string& data, const std::string& name,
                                    method::Method& method,
                                    torch::optim::Optimizer* optimizer = nullptr,
                                    bool restore_rng = false);

}  // namespace contra::train
