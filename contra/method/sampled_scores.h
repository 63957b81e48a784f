#pragma once
/// Scores of sampled rows, the core of the CPC loss.
#include <torch/types.h>

namespace contra::method {

/// out[i, j] = predictions[i] · frames[index[i, j]], without materialising the gathered vectors.
/// predictions (M, C), frames (F, C), index (M, J) int64 → (M, J); differentiable in predictions
/// and frames.
/// - CPU, float32/float64: sparse kernels, forward and backward M·J·C multiply-adds each (no dense
///   (M × F) product; 8× fewer operations at the paper's size), on the ATen thread pool.
/// - otherwise (CUDA; bf16 on AMX CPUs): one dense product predictions × framesᵀ, then a gather.
torch::Tensor sampled_scores(const torch::Tensor& predictions, const torch::Tensor& frames,
                             const torch::Tensor& index);

}  // namespace contra::method
