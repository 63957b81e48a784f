#pragma once
/// MFCC features computed with torch ops (Davis & Mermelstein 1980; HTK conventions), the baseline
/// of the CPC paper's probes (Oord et al. 2018, arXiv:1807.03748, Table 1: MFCC 39.7% phone
/// accuracy).
#include <cstdint>

#include <torch/arg.h>
#include <torch/types.h>

namespace contra::transforms {

struct MfccOptions {
  TORCH_ARG(int64_t, sample_rate) = 16000;
  /// Analysis window in samples (25 ms at 16 kHz) and hop (10 ms = the encoder's 160×
  /// down-sampling).
  TORCH_ARG(int64_t, window) = 400;
  TORCH_ARG(int64_t, hop) = 160;
  /// FFT size (>= window; the frame is zero-padded).
  TORCH_ARG(int64_t, n_fft) = 512;
  TORCH_ARG(int64_t, n_mels) = 40;
  /// Cepstral coefficients kept (c0 included).
  TORCH_ARG(int64_t, n_mfcc) = 13;
  TORCH_ARG(double, f_min) = 0.0;
  /// Upper filterbank edge; <= 0 means sample_rate / 2.
  TORCH_ARG(double, f_max) = 0.0;
  /// y[n] = x[n] − a·x[n−1]; 0 switches pre-emphasis off.
  TORCH_ARG(double, pre_emphasis) = 0.97;
  /// Append deltas and delta-deltas (regression over ±delta_width frames).
  TORCH_ARG(bool, deltas) = true;
  TORCH_ARG(int64_t, delta_width) = 2;
};

/// MFCC (+ Δ + ΔΔ) per 10 ms frame, aligned with contra::nn::ConvEncoder's frames.
///
/// Framing rule: for S input samples there are T = ⌊S / hop⌋ frames; frame t is centred on sample
/// t·hop + hop/2 (t·160 + 80, the centre of the encoder frame's hop and of a 100 Hz phone label's
/// 10 ms), i.e. it covers [t·hop + hop/2 − window/2, t·hop + hop/2 + window/2), zero outside the
/// signal. Per frame: pre-emphasis (on the whole signal), periodic Hann window, power spectrum
/// |FFT_n_fft|², HTK mel filterbank (mel(f) = 2595·log10(1 + f/700), n_mels triangles between f_min
/// and f_max, unnormalised), natural log (floored at 1e-10), DCT-II with orthonormal scaling, first
/// n_mfcc coefficients. Deltas: d_t = Σ_{n=1..N} n (c_{t+n} − c_{t−n}) / (2 Σ n²), edges
/// replicated; ΔΔ = Δ(Δ).
///
/// Input (S), (B, S) or (B, 1, S) float audio → float32 (T, F), (B, T, F), (B, T, F) with
/// F = n_mfcc·(1 + 2·deltas) (39 by default); computed in float64 inside. Throws ConfigError for
/// invalid options (window > n_fft, n_mfcc > n_mels, f_max <= f_min, non-positive sizes) and
/// c10::Error for a wrong input shape or fewer than hop samples. Reference values:
/// scripts/mfcc_reference.py (numpy, independent of torch's FFT).
///
///   auto feats = contra::transforms::mfcc(audio);   // (16000) → (100, 39)
torch::Tensor mfcc(const torch::Tensor& audio, const MfccOptions& options = {});

/// The (n_fft/2 + 1, n_mels) HTK mel filterbank used above.
torch::Tensor mel_filterbank(const MfccOptions& options, const torch::TensorOptions& tensor = {});

}  // namespace contra::transforms
