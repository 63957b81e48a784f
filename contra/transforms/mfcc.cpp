#include "contra/transforms/mfcc.h"

#include <cmath>

#include <torch/torch.h>

#include "contra/core/error.h"

namespace contra::transforms {

namespace {

void validate(const MfccOptions& o) {
  check<ConfigError>(
      o.sample_rate() > 0 && o.window() > 0 && o.hop() > 0 && o.n_mels() > 0 && o.n_mfcc() > 0,
      "mfcc: sample_rate, window, hop, n_mels, n_mfcc must be > 0 (got {}, {}, {}, "
      "{}, {})",
      o.sample_rate(), o.window(), o.hop(), o.n_mels(), o.n_mfcc());
  check<ConfigError>(o.n_fft() >= o.window(), "mfcc: n_fft must be >= window (got {} < {})",
                     o.n_fft(), o.window());
  check<ConfigError>(o.n_mfcc() <= o.n_mels(), "mfcc: n_mfcc must be <= n_mels (got {} > {})",
                     o.n_mfcc(), o.n_mels());
  const double f_max = o.f_max() > 0 ? o.f_max() : o.sample_rate() / 2.0;
  check<ConfigError>(o.f_min() >= 0 && f_max > o.f_min() && f_max <= o.sample_rate() / 2.0,
                     "mfcc: need 0 <= f_min < f_max <= sample_rate/2 (got f_min {}, f_max {})",
                     o.f_min(), f_max);
  check<ConfigError>(o.pre_emphasis() >= 0 && o.pre_emphasis() < 1,
                     "mfcc: pre_emphasis must be in [0, 1) (got {})", o.pre_emphasis());
  check<ConfigError>(o.delta_width() >= 1, "mfcc: delta_width must be >= 1 (got {})",
                     o.delta_width());
}

double hz_to_mel(double f) { return 2595.0 * std::log10(1.0 + f / 700.0); }

/// Δ along dim −2 of (..., T, F), edges replicated.
torch::Tensor delta_features(const torch::Tensor& c, int64_t width) {
  const int64_t T = c.size(-2);
  double denominator = 0;
  for (int64_t n = 1; n <= width; ++n) denominator += 2.0 * n * n;
  auto index = torch::arange(T, torch::TensorOptions().dtype(torch::kLong).device(c.device()));
  auto out = torch::zeros_like(c);
  for (int64_t n = 1; n <= width; ++n) {
    auto ahead = c.index_select(-2, (index + n).clamp_max(T - 1));
    auto behind = c.index_select(-2, (index - n).clamp_min(0));
    out = out + static_cast<double>(n) * (ahead - behind);
  }
  return out / denominator;
}

}  // namespace

torch::Tensor mel_filterbank(const MfccOptions& o, const torch::TensorOptions& tensor) {
  validate(o);
  const double f_max = o.f_max() > 0 ? o.f_max() : o.sample_rate() / 2.0;
  auto f64 = torch::TensorOptions().dtype(torch::kDouble);
  const int64_t bins = o.n_fft() / 2 + 1;
  auto freqs = torch::arange(bins, f64) * (static_cast<double>(o.sample_rate()) / o.n_fft());
  auto mel_points = torch::linspace(hz_to_mel(o.f_min()), hz_to_mel(f_max), o.n_mels() + 2, f64);
  auto hz_points = 700.0 * (torch::pow(10.0, mel_points / 2595.0) - 1.0);  // (n_mels + 2)
  auto lower = hz_points.narrow(0, 0, o.n_mels()).unsqueeze(0);
  auto centre = hz_points.narrow(0, 1, o.n_mels()).unsqueeze(0);
  auto upper = hz_points.narrow(0, 2, o.n_mels()).unsqueeze(0);
  auto f = freqs.unsqueeze(1);                   // (bins, 1)
  auto rising = (f - lower) / (centre - lower);  // (bins, n_mels)
  auto falling = (upper - f) / (upper - centre);
  auto fb = torch::clamp_min(torch::minimum(rising, falling), 0.0);
  return fb.to(tensor.has_dtype() ? tensor.dtype().toScalarType() : torch::kFloat)
      .to(tensor.device());
}

torch::Tensor mfcc(const torch::Tensor& audio, const MfccOptions& o) {
  validate(o);
  TORCH_CHECK(audio.dim() >= 1 && audio.dim() <= 3 && (audio.dim() != 3 || audio.size(1) == 1),
              "mfcc: audio must be (S), (B, S) or (B, 1, S), got ", audio.sizes());
  auto x = audio.dim() == 3 ? audio.squeeze(1) : audio;
  const bool single = x.dim() == 1;
  if (single) x = x.unsqueeze(0);
  // float64 inside: bands far below the loudest one (pure tones, silence) keep their log energies
  // exact instead of float32 FFT round-off (errors up to ~1e-2 in the cepstra otherwise).
  x = x.to(torch::kDouble);  // (B, S)
  const int64_t S = x.size(1), T = S / o.hop();
  TORCH_CHECK(T >= 1, "mfcc: need at least ", o.hop(), " samples, got ", S);

  if (o.pre_emphasis() > 0) {
    auto rest = x.narrow(1, 1, S - 1) - o.pre_emphasis() * x.narrow(1, 0, S - 1);
    x = torch::cat({x.narrow(1, 0, 1), rest}, 1);
  }
  // Frame t covers [t·hop + hop/2 − window/2, … + window): pad so that every frame lies inside.
  const int64_t left = o.window() / 2 - o.hop() / 2;  // 120 at the defaults
  const int64_t pad_left = std::max<int64_t>(left, 0);
  const int64_t needed = (T - 1) * o.hop() + o.window();  // samples spanned by the T frames
  const int64_t pad_right = std::max<int64_t>(0, needed - left - S);
  auto padded = torch::constant_pad_nd(x, {pad_left, pad_right}, 0.0);
  if (left < 0) padded = padded.narrow(1, -left, padded.size(1) + left);
  auto frames = padded.unfold(1, o.window(), o.hop()).narrow(1, 0, T);  // (B, T, window)
  auto window = torch::hann_window(o.window(), /*periodic=*/true, x.options());
  auto spectrum = torch::fft_rfft(frames * window, o.n_fft(), -1);  // (B, T, n_fft/2+1)
  auto power = torch::view_as_real(spectrum).pow(2).sum(-1);        // |X|²
  auto mel = torch::matmul(power, mel_filterbank(o, x.options()));  // (B, T, n_mels)
  auto log_mel = torch::log(torch::clamp_min(mel, 1e-10));
  // DCT-II, orthonormal: D[n, k] = sqrt(2/N) cos(π k (2n + 1) / 2N), column 0 scaled by 1/sqrt(2).
  const int64_t N = o.n_mels();
  auto f64 = torch::TensorOptions().dtype(torch::kDouble);
  auto n = torch::arange(N, f64).unsqueeze(1);
  auto k = torch::arange(o.n_mfcc(), f64).unsqueeze(0);
  auto dct = torch::cos(M_PI / N * (n + 0.5) * k) * std::sqrt(2.0 / N);
  dct.select(1, 0).mul_(1.0 / std::sqrt(2.0));
  auto c = torch::matmul(log_mel, dct.to(x.options()));  // (B, T, n_mfcc)
  if (o.deltas()) {
    torch::Tensor d = delta_features(c, o.delta_width());
    torch::Tensor dd = delta_features(d, o.delta_width());
    c = torch::cat({c, d, dd}, -1);
  }
  c = c.to(torch::kFloat);
  return single ? c.squeeze(0) : c;
}

}  // namespace contra::transforms
