#pragma once
/// The CPC loss of every prediction step at once, on sampled candidates (Oord et al. 2018,
/// arXiv:1807.03748, eq. 4), and the uniform candidate sampler that feeds it.
#include <cstdint>
#include <utility>

#include <torch/types.h>

namespace contra::method {

/// Rows of a CPC step: one per anchor (b, t) and step k, ordered by k = 1..K, then b, then
/// t ∈ [0, T − k). Row count R = Σ_k B·(T − k).
int64_t cpc_rows(int64_t batch, int64_t frames, int64_t steps);

/// Candidate frame ids for every row of a step: column 0 the positive z_{t+k} (pool id
/// `pool_offset + b·T + t + k`), columns 1..count negatives drawn uniformly with replacement from
/// the pool [0, pool_size) minus the positive (r ∈ [0, pool_size − 1), r += (r ≥ positive)).
/// Counter-based: each entry is a hash of (seed, row, column), so the result depends on the seed
/// alone (not on threads), rows fill in parallel, and the draw costs ~1 ns an entry. Returns
/// (R, 1 + count) int32.
///
///   auto cand = uniform_candidates(8, 128, 12, 128, 1024, 0, seed);   // (11664, 129)
torch::Tensor uniform_candidates(int64_t batch, int64_t frames, int64_t steps, int64_t count,
                                 int64_t pool_size, int64_t pool_offset, uint64_t seed);

/// Per-step InfoNCE over sampled candidates, all steps in one call. For row r = (k, b, t):
///   s_rj = predictions[b, t, k − 1] · pool[candidates[r, j]] / τ,
///   ℓ_r  = logsumexp_j s_rj − s_r0   (column 0 is the positive),
/// loss_k = mean of ℓ_r over the B·(T − k) rows of step k.
///
/// predictions (B, T, K, C); pool (N, C) frames; candidates (R, J) int32 or int64 ids in [0, N).
/// Returns {loss (K), correct (K) float64}: loss differentiable in predictions and pool; correct
/// (no gradient) the share of each step's rows whose positive scores strictly above every other
/// candidate. CPU float32/float64: fused kernels (scores, then the gradients of predictions and
/// pool) that never materialise the (R, J, C) candidate vectors nor a dense (R × N) product, on
/// the ATen thread pool; any other device or dtype (CUDA, bf16): one dense product per step, then
/// a gather. Throws c10::Error on mismatched shapes or ids out of range.
std::pair<torch::Tensor, torch::Tensor> step_info_nce(const torch::Tensor& predictions,
                                                      const torch::Tensor& pool,
                                                      const torch::Tensor& candidates,
                                                      double temperature);

}  // namespace contra::method
