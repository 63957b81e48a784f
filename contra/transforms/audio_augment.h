#pragma once
/// Audio augmentation chain for raw-waveform batches, as CPC_audio's v2 data augmentation offers
/// (Kharitonov et al. 2021, "Data Augmenting Contrastive Learning of Speech Representations in the
/// Time Domain", arXiv:2007.00991): speed/pitch by resampling, time shift, band-reject, gain,
/// noise.
#include <cstdint>
#include <string>

#include <ATen/core/Generator.h>
#include <torch/arg.h>
#include <torch/types.h>

namespace contra::transforms {

struct AudioAugmentOptions {
  TORCH_ARG(int64_t, sample_rate) = 16000;
  /// Speed/pitch perturbation: resample by a factor f ~ U[speed_min, speed_max] (f > 1 = faster and
  /// higher; linear interpolation; the window keeps its length, zero past the input's end).
  TORCH_ARG(double, speed_p) = 0.0;
  TORCH_ARG(double, speed_min) = 0.9;
  TORCH_ARG(double, speed_max) = 1.1;
  /// Time shift by s ~ U{−max_shift, …, max_shift} samples (zero fill).
  TORCH_ARG(double, shift_p) = 0.0;
  TORCH_ARG(int64_t, max_shift) = 800;
  /// Band-reject: zero the FFT bins within width/2 of a centre; centre ~ U[band_min_hz,
  /// band_max_hz], width ~ U[width_min_hz, width_max_hz].
  TORCH_ARG(double, band_reject_p) = 0.0;
  TORCH_ARG(double, band_min_hz) = 100.0;
  TORCH_ARG(double, band_max_hz) = 6000.0;
  TORCH_ARG(double, width_min_hz) = 50.0;
  TORCH_ARG(double, width_max_hz) = 800.0;
  /// Gain g ~ U[gain_min_db, gain_max_db] dB.
  TORCH_ARG(double, gain_p) = 0.0;
  TORCH_ARG(double, gain_min_db) = -6.0;
  TORCH_ARG(double, gain_max_db) = 6.0;
  /// Additive white Gaussian noise at an SNR ~ U[snr_min_db, snr_max_db] dB w.r.t. the window's
  /// power.
  TORCH_ARG(double, noise_p) = 0.0;
  TORCH_ARG(double, snr_min_db) = 5.0;
  TORCH_ARG(double, snr_max_db) = 30.0;
  /// "all", "past_only" (samples before split_sample) or "future_only" (from split_sample on).
  TORCH_ARG(std::string, region) = "all";
  /// Where past ends; −1 = the middle of the window. For encoder frame t use t · 160.
  TORCH_ARG(int64_t, split_sample) = -1;
};

/// Applies, in this order, speed → shift → band-reject → gain → noise to each window of a batch,
/// each step independently with its probability p and with per-window random parameters drawn from
/// the chain's own seeded torch::Generator (reproducible; save/restore it with `generator()`).
/// Everything is off by default (all p = 0: the input is returned unchanged).
///
/// Input/output (B, 1, S) float on any device (random draws happen on the CPU, then move).
/// Throws ConfigError for probabilities outside [0, 1], min > max, non-positive speeds, an unknown
/// region, or band edges above the Nyquist frequency; c10::Error for a wrong input shape.
///
///   AudioAugment augment(AudioAugmentOptions().noise_p(0.5).gain_p(0.5), /*seed=*/1);
///   batch.input = augment(batch.input);
class AudioAugment {
 public:
  explicit AudioAugment(AudioAugmentOptions options = {}, uint64_t seed = 0);
  torch::Tensor operator()(const torch::Tensor& audio);
  /// True when any step has p > 0.
  bool enabled() const;
  at::Generator& generator() { return generator_; }
  const AudioAugmentOptions& options() const { return options_; }

 private:
  AudioAugmentOptions options_;
  at::Generator generator_;
};

}  // namespace contra::transforms
