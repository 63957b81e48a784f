#include "contra/data/sentences.h"

#include <cmath>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

namespace contra::data {
namespace {

TEST(SplitMix64, KnownFirstValuesAndRanges) {
  // Reference values of splitmix64 seeded with 0 (Vigna's published generator).
  SplitMix64 r(0);
  EXPECT_EQ(r.next(), 0xE220A8397B1DCDAFull);
  EXPECT_EQ(r.next(), 0x6E789E6AA1B965F4ull);
  SplitMix64 s(42);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_LT(s.below(7), 7u);
    double u = s.uniform();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
  }
  double sum = 0, sq = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    double z = s.normal();
    sum += z;
    sq += z * z;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.05);
  EXPECT_NEAR(sq / n, 1.0, 0.05);
  EXPECT_NE(mix_seed(1, 2), mix_seed(2, 1));
  EXPECT_EQ(mix_seed(1, 2, 3), mix_seed(1, 2, 3));
}

TEST(Sentences, DeterministicVariedAndUnique) {
  SentenceGenerator a(7), b(7), c(8);
  std::set<std::string> seen;
  std::set<std::string> words;
  bool differs = false;
  for (int i = 0; i < 5000; ++i) {
    std::string s = a.next_unique();
    EXPECT_EQ(s, b.next_unique());
    differs |= s != c.next_unique();
    EXPECT_TRUE(seen.insert(s).second);
    ASSERT_FALSE(s.empty());
    EXPECT_TRUE(std::isupper(static_cast<unsigned char>(s[0]))) << s;
    EXPECT_TRUE(s.back() == '.' || s.back() == '?') << s;
    std::stringstream ss(s);
    for (std::string w; ss >> w;) words.insert(w);
  }
  EXPECT_TRUE(differs);
  EXPECT_GT(words.size(), 400u);  // a varied vocabulary, not a handful repeated
}

TEST(Sentences, NumberWords) {
  EXPECT_EQ(number_word(0), "zero");
  EXPECT_EQ(number_word(13), "thirteen");
  EXPECT_EQ(number_word(40), "forty");
  EXPECT_EQ(number_word(97), "ninety-seven");
  EXPECT_THROW(number_word(100), std::out_of_range);
}

}  // namespace
}  // namespace contra::data
