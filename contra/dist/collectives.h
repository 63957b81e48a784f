#pragma once
/// Collectives for training code over the process-wide group (dist::world(), group.h). With one
/// process every function is the identity (or a plain local computation), so methods call them
/// unconditionally.
///
///   torch::Tensor all = contra::dist::all_gather(z);          // (W·N, D), gradients flow back
///   torch::Tensor keys = contra::dist::concat_all_gather(k);  // (W·N, D), no gradient (MoCo)
#include <cstdint>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

#include "contra/dist/group.h"

namespace contra::dist {

/// Every rank's `x` concatenated along dim 0 in rank order: (W·N, ...) from (N, ...), with
/// autograd. Backward: the gradients of all ranks for the whole output are summed (all-reduce) and
/// each rank keeps its own slice — so rank r receives ∂(Σ_s L_s)/∂x_r, the gradient of the sum of
/// every rank's loss. With the data-parallel average of parameter gradients (average_gradients)
/// this gives exactly the gradient of the mean loss over the global batch.
/// The row offset of this rank's slice is rank()·N.
torch::Tensor all_gather(const torch::Tensor& x);

/// The same concatenation without gradient (the MoCo implementation's concat_all_gather).
torch::Tensor concat_all_gather(const torch::Tensor& x);

/// Σ over ranks of `x`, with autograd (backward: the summed gradient). For statistics that must
/// cover the global batch (synchronised batch norm).
torch::Tensor all_reduce_sum(const torch::Tensor& x);

/// Copies rank 0's parameters and buffers into every rank's module (at the start of training).
void broadcast_module(torch::nn::Module& module);

/// Data-parallel gradient averaging: the gradients of `parameters` are summed across ranks in
/// buckets of about `bucket_bytes` (one flat tensor per bucket and dtype/device) and divided by the
/// world size. A parameter without a gradient counts as zero (so every rank sends the same
/// layout). No-op with one process. Returns the bytes reduced.
std::int64_t average_gradients(const std::vector<torch::Tensor>& parameters,
                               std::int64_t bucket_bytes = std::int64_t(25) << 20);

/// Rank 0's `text` on every rank.
std::string broadcast_string(const std::string& text);

/// Sums plain numbers across ranks (float64; identity with one process).
std::vector<double> all_reduce_sum(const std::vector<double>& values);

/// True on every rank when `flag` is true on any rank.
bool any_rank(bool flag);

/// MoCo's shuffle-BN across ranks (`_batch_shuffle_ddp`): gathers the global batch, permutes it
/// with a permutation drawn on rank 0 (its torch generator) and broadcast, and returns this rank's
/// slice of the shuffled batch plus what undoes it. With one process: a local permutation.
struct Shuffled {
  torch::Tensor local;      // (N, ...) this rank's part of the shuffled global batch
  torch::Tensor unshuffle;  // (W·N) int64: argsort of the permutation
};
Shuffled batch_shuffle(const torch::Tensor& x);
/// `_batch_unshuffle_ddp`: gathers every rank's computed slice (no gradient) and returns the rows
/// of this rank's original items, in their original order.
torch::Tensor batch_unshuffle(const torch::Tensor& x, const torch::Tensor& unshuffle);

}  // namespace contra::dist
