#pragma once
/// One GRU or LSTM layer over a whole sequence with its own backward (Cho et al. 2014,
/// arXiv:1406.1078; Hochreiter & Schmidhuber 1997), the equations and gate order of torch.nn.GRU /
/// torch.nn.LSTM.
#include <torch/types.h>

namespace contra::nn::functional {

/// GRU over x (B, T, I), batch first, from h₀ = 0:
///   r = σ(W_ir x + b_ir + W_hr h + b_hr),  z = σ(W_iz x + b_iz + W_hz h + b_hz),
///   n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),  h' = (1 − z) ⊙ n + z ⊙ h.
/// w_ih (3H, I), w_hh (3H, H), b_ih, b_hh (3H) or undefined, rows in torch's order (r, z, n).
/// Returns the hidden states (B, T, H), differentiable in x and the four parameters.
///
/// CPU float32/float64: the input projection of all T steps is one matrix product, each step one
/// (B, H) × (H, 3H) product and one fused gate kernel; backward runs the recurrence once, then
/// the weight and input gradients as three large products over all steps. Elsewhere (CUDA): ATen's
/// gru (cuDNN). Throws c10::Error on mismatched shapes.
///
///   auto c = gru_sequence(z, gru->weight_ih_l0, gru->weight_hh_l0, gru->bias_ih_l0,
///                         gru->bias_hh_l0);   // z (8, 128, 256) → c (8, 128, 256)
torch::Tensor gru_sequence(const torch::Tensor& x, const torch::Tensor& w_ih,
                           const torch::Tensor& w_hh, const torch::Tensor& b_ih,
                           const torch::Tensor& b_hh);

/// LSTM over x (B, T, I), batch first, from h₀ = c₀ = 0, gates (i, f, g, o) as torch.nn.LSTM:
///   i, f, o = σ(·), g = tanh(·) of W_i* x + b_i* + W_h* h + b_h*;  c' = f ⊙ c + i ⊙ g,
///   h' = o ⊙ tanh(c').
/// w_ih (4H, I), w_hh (4H, H), b_ih, b_hh (4H) or undefined. Returns h (B, T, H); same execution
/// as gru_sequence.
torch::Tensor lstm_sequence(const torch::Tensor& x, const torch::Tensor& w_ih,
                            const torch::Tensor& w_hh, const torch::Tensor& b_ih,
                            const torch::Tensor& b_hh);

}  // namespace contra::nn::functional
