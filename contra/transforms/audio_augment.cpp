#include "contra/transforms/audio_augment.h"

#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "contra/core/error.h"

namespace contra::transforms {

namespace {

void check_p(double p, const char* name) {
  check<ConfigError>(p >= 0 && p <= 1, "audio_augment: {} must be in [0, 1] (got {})", name, p);
}
void check_range(double lo, double hi, const char* name) {
  check<ConfigError>(lo <= hi, "audio_augment: {}: min must be <= max (got {} > {})", name, lo, hi);
}

}  // namespace

AudioAugment::AudioAugment(AudioAugmentOptions options, uint64_t seed)
    : options_(std::move(options)), generator_(at::make_generator<at::CPUGeneratorImpl>(seed)) {
  const auto& o = options_;
  check_p(o.speed_p(), "speed_p");
  check_p(o.shift_p(), "shift_p");
  check_p(o.band_reject_p(), "band_reject_p");
  check_p(o.gain_p(), "gain_p");
  check_p(o.noise_p(), "noise_p");
  check_range(o.speed_min(), o.speed_max(), "speed");
  check_range(o.band_min_hz(), o.band_max_hz(), "band");
  check_range(o.width_min_hz(), o.width_max_hz(), "width");
  check_range(o.gain_min_db(), o.gain_max_db(), "gain");
  check_range(o.snr_min_db(), o.snr_max_db(), "snr");
  check<ConfigError>(o.sample_rate() > 0, "audio_augment: sample_rate must be > 0 (got {})",
                     o.sample_rate());
  check<ConfigError>(o.speed_min() > 0, "audio_augment: speed_min must be > 0 (got {})",
                     o.speed_min());
  check<ConfigError>(o.max_shift() >= 0, "audio_augment: max_shift must be >= 0 (got {})",
                     o.max_shift());
  check<ConfigError>(
      o.band_min_hz() >= 0 && o.band_max_hz() <= o.sample_rate() / 2.0 && o.width_min_hz() >= 0,
      "audio_augment: band must lie in [0, {}] Hz with width >= 0 (got [{}, {}], "
      "width {})",
      o.sample_rate() / 2.0, o.band_min_hz(), o.band_max_hz(), o.width_min_hz());
  check<ConfigError>(
      o.region() == "all" || o.region() == "past_only" || o.region() == "future_only",
      "audio_augment: region must be all, past_only or future_only (got '{}')", o.region());
}

bool AudioAugment::enabled() const {
  const auto& o = options_;
  return o.speed_p() > 0 || o.shift_p() > 0 || o.band_reject_p() > 0 || o.gain_p() > 0 ||
         o.noise_p() > 0;
}

torch::Tensor AudioAugment::operator()(const torch::Tensor& audio) {
  TORCH_CHECK(audio.dim() == 3 && audio.size(1) == 1,
              "audio_augment: input must be (B, 1, S), got ", audio.sizes());
  if (!enabled()) return audio;
  torch::NoGradGuard no_grad;
  const auto& o = options_;
  const int64_t B = audio.size(0), S = audio.size(2);
  const auto dev = audio.device();
  const auto cpu = torch::TensorOptions().dtype(torch::kFloat);
  auto x = audio.squeeze(1).to(torch::kFloat);  // (B, S)
  auto time = torch::arange(S, x.options());    // (S)
  // Per-window draws: `applies` (B, 1) bool and a U[lo, hi] value (B, 1), on the CPU generator.
  auto applies = [&](double p) { return (torch::rand({B, 1}, generator_, cpu) < p).to(dev); };
  auto uniform = [&](double lo, double hi) {
    return (torch::rand({B, 1}, generator_, cpu) * (hi - lo) + lo).to(dev);
  };
  auto out = x;
  if (o.speed_p() > 0) {
    auto mask = applies(o.speed_p());
    auto factor = uniform(o.speed_min(), o.speed_max());
    auto position = time.unsqueeze(0) * factor;  // (B, S): output n reads input at n·f
    auto i0 = position.floor().clamp_max(S - 1).to(torch::kLong);
    auto frac = position - i0.to(position.dtype());
    auto i1 = (i0 + 1).clamp_max(S - 1);
    auto resampled = out.gather(1, i0) * (1 - frac) + out.gather(1, i1) * frac;
    resampled = resampled.masked_fill(position > S - 1, 0.0);
    out = torch::where(mask, resampled, out);
  }
  if (o.shift_p() > 0) {
    auto mask = applies(o.shift_p());
    auto shift = torch::randint(-o.max_shift(), o.max_shift() + 1, {B, 1}, generator_,
                                torch::TensorOptions().dtype(torch::kLong))
                     .to(dev);
    auto source = time.to(torch::kLong).unsqueeze(0) - shift;  // out[n] = x[n − s]
    auto valid = (source >= 0) & (source < S);
    auto shifted = out.gather(1, source.clamp(0, S - 1)).masked_fill(~valid, 0.0);
    out = torch::where(mask, shifted, out);
  }
  if (o.band_reject_p() > 0) {
    auto mask = applies(o.band_reject_p());
    auto centre = uniform(o.band_min_hz(), o.band_max_hz());
    auto width = uniform(o.width_min_hz(), o.width_max_hz());
    auto spectrum = torch::fft_rfft(out, S, -1);  // (B, S/2 + 1)
    auto freq = torch::arange(spectrum.size(1), x.options()) *
                (static_cast<double>(o.sample_rate()) / static_cast<double>(S));
    auto reject = (freq.unsqueeze(0) - centre).abs() <= width / 2;  // (B, bins)
    spectrum = spectrum.masked_fill(reject, 0.0);
    out = torch::where(mask, torch::fft_irfft(spectrum, S, -1), out);
  }
  if (o.gain_p() > 0) {
    auto mask = applies(o.gain_p());
    auto gain = torch::pow(10.0, uniform(o.gain_min_db(), o.gain_max_db()) / 20.0);
    out = torch::where(mask, out * gain, out);
  }
  if (o.noise_p() > 0) {
    auto mask = applies(o.noise_p());
    auto snr = uniform(o.snr_min_db(), o.snr_max_db());
    auto power = out.pow(2).mean(1, true);  // (B, 1)
    auto noise = torch::randn({B, S}, generator_, cpu).to(dev);
    auto scale = torch::sqrt(power / torch::pow(10.0, snr / 10.0));
    out = torch::where(mask, out + noise * scale, out);
  }
  if (o.region() != "all") {
    const int64_t split = o.split_sample() < 0 ? S / 2 : std::min(o.split_sample(), S);
    auto past = (time < static_cast<double>(split)).unsqueeze(0);  // (1, S)
    out = o.region() == "past_only" ? torch::where(past, out, x) : torch::where(past, x, out);
  }
  return out.to(audio.dtype()).unsqueeze(1);
}

}  // namespace contra::transforms
