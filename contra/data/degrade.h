#pragma once
/// Deterministic degradations for the built-in speech corpus, so that it need not be studio-clean:
/// random gain, Schroeder reverberation, additive noise at a chosen SNR. Each draws from its own
/// SplitMix64 stream, so an utterance's degradation depends only on (corpus seed, utterance index).
#include <cstdint>
#include <vector>

#include "contra/data/sentences.h"

namespace contra::data {

struct DegradeConfig {
  /// Probability that an utterance gets additive noise.
  double noise_probability = 0.5;
  /// SNR range in dB for additive noise (uniform).
  double snr_db_min = 15.0;
  double snr_db_max = 35.0;
  /// Probability of reverberation and its RT60 range in seconds.
  double reverb_probability = 0.3;
  double rt60_min = 0.15;
  double rt60_max = 0.5;
  /// Gain range in dB (uniform); the result is then limited to a peak of 0.99.
  double gain_db_min = -8.0;
  double gain_db_max = 0.0;

  template <class V>
  void visit(V& v) {
    v("noise_probability", noise_probability, "probability of additive noise [0, 1]");
    v("snr_db_min", snr_db_min, "lowest SNR in dB");
    v("snr_db_max", snr_db_max, "highest SNR in dB");
    v("reverb_probability", reverb_probability, "probability of reverberation [0, 1]");
    v("rt60_min", rt60_min, "shortest reverberation time RT60 in s");
    v("rt60_max", rt60_max, "longest reverberation time RT60 in s");
    v("gain_db_min", gain_db_min, "lowest gain in dB");
    v("gain_db_max", gain_db_max, "highest gain in dB");
  }
  void validate() const;
};

/// Adds white Gaussian noise so that signal power / noise power = 10^(snr_db/10).
void add_noise(std::vector<float>& audio, double snr_db, SplitMix64& rng);
/// Schroeder reverberator (4 parallel feedback combs + 2 all-passes), RT60 in seconds, 50% wet mix.
void add_reverb(std::vector<float>& audio, double rt60_s, int sample_rate);
/// Scales by 10^(gain_db/20).
void apply_gain(std::vector<float>& audio, double gain_db);
/// Scales down so that max|x| <= peak (never up).
void limit_peak(std::vector<float>& audio, float peak = 0.99f);
/// Applies the configured random degradations; returns a short description ("noise 21.3dB, gain
/// -3.1dB").
std::string degrade(std::vector<float>& audio, const DegradeConfig& config, int sample_rate,
                    SplitMix64& rng);

}  // namespace contra::data
