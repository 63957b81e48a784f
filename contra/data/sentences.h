#pragma once
/// A seeded generator of varied English sentences for the built-in speech corpus.
///
/// Sentences come from a small phrase grammar (statements, questions, lists of numbers,
/// descriptions) over word lists of a few hundred words, so phone contexts vary: with the default
/// lists there are far more than 10^8 distinct sentences, and a corpus of thousands repeats none
/// (`unique` draws).
///
///   SentenceGenerator gen(/*seed=*/1);
///   std::string s = gen.next();            // "The quiet farmer carried seven heavy boxes to the
///   market."
#include <cstdint>
#include <set>
#include <string>

namespace contra::data {

/// splitmix64: a tiny, fully specified PRNG (the same stream on every platform and compiler).
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next();
  /// Uniform integer in [0, n).
  std::uint64_t below(std::uint64_t n);
  /// Uniform double in [0, 1).
  double uniform();
  /// Uniform double in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// Standard normal (Box–Muller).
  double normal();

 private:
  std::uint64_t state_;
};

/// Mixes several values into one seed (for per-item streams: seed, speaker, utterance).
std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b, std::uint64_t c = 0);

class SentenceGenerator {
 public:
  explicit SentenceGenerator(std::uint64_t seed) : rng_(seed) {}
  /// Next sentence (may repeat an earlier one).
  std::string next();
  /// Next sentence never returned before by this generator's `next_unique`.
  std::string next_unique();

 private:
  SplitMix64 rng_;
  std::set<std::string> used_;
};

/// "seven" for 7 (0..99).
std::string number_word(int n);

}  // namespace contra::data
