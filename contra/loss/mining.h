#pragma once
/// Negative mining and synthesis on top of a memory (queue or memory bank).
///
/// get_negatives — per query, `num_random` other items of the batch drawn uniformly without
/// replacement, followed by the k entries of the memory most similar to it (cosine), optionally
/// skipping each query's own entry (as in hard-negative mining from a memory bank,
/// e.g. Kalantidis et al. 2020 §3; Wu et al. 2018).
///
/// MoCHi (Kalantidis, Sariyildiz, Pion, Weinzaepfel & Larlus 2020, "Hard Negative Mixing for
/// Contrastive Learning", arXiv:2010.01028, §4): from the N negatives with the highest q·n (the
/// hardest), synthesise
///   s  mixes h = normalize(α n_i + (1 − α) n_j),   α ~ U(0, 1), i ≠ j among the N;
///   s′ mixes h′ = normalize(β q + (1 − β) n_j),    β ~ U(0, 0.5) so the query contributes less
///   than half;
/// their logits q·h are appended to the negatives' logits. Synthetic points carry no gradient
/// (the queue's negatives carry none either); the query is normalised before mixing.
///
/// Random draws use LibTorch's default generator (seed it with torch::manual_seed).
///
///   auto l_neg = torch::cat({q.mm(queue->negatives().t()), mochi_logits(q, queue->negatives())},
///   1); auto loss = contra::loss::functional::info_nce((q * k).sum(1), l_neg, opts);
#include <cstdint>

#include <torch/arg.h>
#include <torch/types.h>

namespace contra::loss {

struct NegativeMiningOptions {
  /// Random other items of the batch per query (0 ... B − 1).
  TORCH_ARG(int64_t, num_random) = 0;
};

/// features (B, D), memory (M, D), k <= M → negatives (B, num_random + k, D): random in-batch
/// first, then the k nearest memory entries (most similar first). `exclude` (B) int64: the memory
/// row of each query's own entry, never returned among its nearest (−1: none). The memory entries
/// are detached. Throws ConfigError for k or num_random out of range, c10::Error for shape
/// mismatches.
torch::Tensor get_negatives(const torch::Tensor& features, const torch::Tensor& memory, int64_t k,
                            const NegativeMiningOptions& options = {},
                            const torch::Tensor& exclude = {});

struct MoCHiOptions {
  /// N: how many of the hardest negatives are mixed (1 ... K).
  TORCH_ARG(int64_t, num_hard) = 1024;
  /// s: mixes of two hard negatives.
  TORCH_ARG(int64_t, num_mixed) = 1024;
  /// s′: mixes of the query with a hard negative.
  TORCH_ARG(int64_t, num_query_mixed) = 256;
};

/// query (B, D), negatives (K, D) unit vectors (a MoCo queue) → synthetic negatives (B, s + s′, D):
/// the s negative mixes, then the s′ query mixes. No gradient. Throws ConfigError for N outside
/// 1 ... K (2 ... K when s > 0) or s, s′ < 0; c10::Error for shape mismatches.
torch::Tensor mochi_negatives(const torch::Tensor& query, const torch::Tensor& negatives,
                              const MoCHiOptions& options = {});
/// Logits (B, s + s′) = q̂ · h of the synthetic negatives (not divided by τ).
torch::Tensor mochi_logits(const torch::Tensor& query, const torch::Tensor& negatives,
                           const MoCHiOptions& options = {});

}  // namespace contra::loss
