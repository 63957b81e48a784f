#include "contra/data/sentences.h"

#include <cctype>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace contra::data {

std::uint64_t SplitMix64::next() {
  std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::uint64_t SplitMix64::below(std::uint64_t n) {
  if (n == 0) throw std::invalid_argument("SplitMix64::below(0)");
  // Rejection sampling: exact uniformity.
  std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t x;
  do {
    x = next();
  } while (x >= limit);
  return x % n;
}

double SplitMix64::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

double SplitMix64::normal() {
  double u1 = uniform(), u2 = uniform();
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b, std::uint64_t c) {
  SplitMix64 r(a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull) * 0xBF58476D1CE4E5B9ull ^
               (c + 0x8CB92BA72F3D8DD7ull) * 0x94D049BB133111EBull);
  r.next();
  return r.next();
}

namespace {

using Words = std::vector<const char*>;

const Words kNames = {"Anna",  "Peter",  "Maria", "James",  "Olivia", "Thomas", "Sophie", "Daniel",
                      "Grace", "Martin", "Laura", "Oscar",  "Helen",  "Victor", "Emma",   "George",
                      "Julia", "Samuel", "Alice", "Robert", "Nora",   "Felix",  "Clara",  "Henry",
                      "Ruth",  "Edward", "Lucy",  "Arthur", "Irene",  "Walter", "Mabel",  "Hugo"};
const Words kAdjectives = {
    "quiet",  "heavy",  "bright", "small",   "ancient", "yellow", "careful", "happy",   "cold",
    "narrow", "wooden", "silver", "gentle",  "broken",  "busy",   "clever",  "dusty",   "early",
    "famous", "fresh",  "golden", "green",   "hollow",  "huge",   "lazy",    "little",  "loud",
    "modern", "muddy",  "new",    "old",     "pale",    "proud",  "purple",  "rapid",   "rough",
    "round",  "shiny",  "short",  "simple",  "sleepy",  "smooth", "soft",    "strange", "strong",
    "sudden", "sweet",  "tall",   "thick",   "thin",    "tired",  "warm",    "wet",     "wild",
    "wise",   "young",  "empty",  "distant", "curious", "patient"};
const Words kNouns = {
    "farmer", "teacher",  "river",  "window",  "garden",  "doctor", "horse",   "village", "kettle",
    "letter", "mountain", "bridge", "basket",  "candle",  "engine", "forest",  "island",  "jacket",
    "ladder", "market",   "needle", "orchard", "pencil",  "rabbit", "sailor",  "tunnel",  "violin",
    "wagon",  "blanket",  "cabin",  "dragon",  "feather", "hammer", "lantern", "mirror",  "painter",
    "parrot", "pocket",   "puzzle", "saddle",  "shadow",  "spider", "station", "thunder", "tiger",
    "tower",  "turtle",   "wallet", "whistle", "baker",   "camera", "circle",  "dinner",  "harbour",
    "kitten", "lemon",    "monkey", "office",  "planet",  "rocket", "soldier", "student", "ticket"};
const Words kPlurals = {"boxes",   "apples",  "children", "stones", "birds",  "chairs",  "boats",
                        "books",   "coins",   "cups",     "ducks",  "eggs",   "flowers", "gloves",
                        "houses",  "keys",    "lamps",    "maps",   "nails",  "oranges", "pages",
                        "rings",   "shoes",   "songs",    "tables", "towels", "trees",   "wheels",
                        "letters", "bottles", "buttons",  "clocks", "doors",  "plates",  "ropes",
                        "shells",  "spoons"};
const Words kVerbsPast = {"carried",  "found",    "painted", "opened",  "watched",   "followed",
                          "borrowed", "cleaned",  "counted", "dropped", "fixed",     "gathered",
                          "hid",      "lifted",   "moved",   "noticed", "packed",    "pulled",
                          "pushed",   "repaired", "sold",    "bought",  "dragged",   "held",
                          "visited",  "measured", "washed",  "wrapped", "described", "remembered",
                          "forgot",   "built",    "chose",   "caught",  "threw",     "brought"};
const Words kVerbsBase = {"carry", "find",   "paint",   "open", "watch",  "follow",   "borrow",
                          "clean", "count",  "drop",    "fix",  "gather", "hide",     "lift",
                          "move",  "notice", "pack",    "pull", "push",   "repair",   "sell",
                          "buy",   "visit",  "measure", "wash", "wrap",   "describe", "remember",
                          "build", "choose", "catch"};
const Words kIntransitive = {"laughed",   "waited", "shouted",  "whispered", "slept",
                             "danced",    "smiled", "arrived",  "listened",  "worked",
                             "travelled", "rested", "wondered", "sang",      "hurried",
                             "stayed",    "paused", "returned"};
const Words kPlaces = {
    "the station",        "the old harbour",    "the kitchen",        "the quiet library",
    "the northern hills", "the village square", "the river bank",     "the school",
    "the market",         "the museum",         "the garden gate",    "the farm",
    "the hospital",       "the bakery",         "the crowded street", "the empty beach",
    "the top floor",      "the small island",   "the forest path",    "the train"};
const Words kPrepositions = {"to",      "near",    "behind", "under",  "beside", "across",
                             "through", "towards", "around", "inside", "past",   "along"};
const Words kTimes = {"yesterday",
                      "this morning",
                      "last winter",
                      "after dinner",
                      "on Monday",
                      "before sunrise",
                      "every evening",
                      "at midnight",
                      "in the spring",
                      "last week",
                      "on a rainy afternoon",
                      "three days ago",
                      "at noon",
                      "during the storm",
                      "on Sunday",
                      "later that night"};
const Words kAdverbs = {"slowly", "quickly", "quietly", "carefully", "suddenly",  "happily",
                        "gently", "loudly",  "easily",  "proudly",   "nervously", "patiently"};
const Words kWeather = {"cold",   "windy", "bright",   "foggy", "warm",  "rainy",
                        "cloudy", "calm",  "freezing", "sunny", "humid", "stormy"};
const Words kConjunctions = {"and then", "but", "so", "because", "while", "although", "until"};

const char* pick(SplitMix64& rng, const Words& words) { return words[rng.below(words.size())]; }

std::string capitalise(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

std::string subject(SplitMix64& rng) {
  switch (rng.below(3)) {
    case 0:
      return pick(rng, kNames);
    case 1:
      return std::string("the ") + pick(rng, kAdjectives) + " " + pick(rng, kNouns);
    default:
      return std::string("the ") + pick(rng, kNouns);
  }
}

std::string object(SplitMix64& rng) {
  switch (rng.below(4)) {
    case 0:
      return number_word(static_cast<int>(2 + rng.below(18))) + " " + pick(rng, kAdjectives) + " " +
             pick(rng, kPlurals);
    case 1:
      return std::string("the ") + pick(rng, kAdjectives) + " " + pick(rng, kNouns);
    case 2:
      return std::string("a ") + pick(rng, kNouns);
    default:
      return std::string("some ") + pick(rng, kPlurals);
  }
}

std::string clause(SplitMix64& rng) {
  switch (rng.below(5)) {
    case 0:
      return subject(rng) + " " + pick(rng, kVerbsPast) + " " + object(rng) + " " +
             pick(rng, kPrepositions) + " " + pick(rng, kPlaces);
    case 1:
      return subject(rng) + " " + pick(rng, kIntransitive) + " " + pick(rng, kAdverbs) + " " +
             pick(rng, kTimes);
    case 2:
      return subject(rng) + " " + pick(rng, kVerbsPast) + " " + object(rng) + " " +
             pick(rng, kTimes);
    case 3:
      return std::string("it was ") + pick(rng, kWeather) + " " + pick(rng, kTimes) + " near " +
             pick(rng, kPlaces);
    default:
      return subject(rng) + " " + pick(rng, kAdverbs) + " " + pick(rng, kVerbsPast) + " " +
             object(rng);
  }
}

}  // namespace

std::string number_word(int n) {
  static const char* kOnes[] = {"zero",    "one",     "two",       "three",    "four",
                                "five",    "six",     "seven",     "eight",    "nine",
                                "ten",     "eleven",  "twelve",    "thirteen", "fourteen",
                                "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
  static const char* kTens[] = {"",      "",      "twenty",  "thirty", "forty",
                                "fifty", "sixty", "seventy", "eighty", "ninety"};
  if (n < 0 || n > 99) throw std::out_of_range("number_word: 0..99");
  if (n < 20) return kOnes[n];
  std::string s = kTens[n / 10];
  if (n % 10) s += std::string("-") + kOnes[n % 10];
  return s;
}

std::string SentenceGenerator::next() {
  std::string s;
  switch (rng_.below(8)) {
    case 0:
      s = capitalise(subject(rng_)) + " did not " + pick(rng_, kVerbsBase) + " " + object(rng_) +
          " " + pick(rng_, kTimes) + ".";
      break;
    case 1:
      s = std::string("Did ") + subject(rng_) + " " + pick(rng_, kVerbsBase) + " " + object(rng_) +
          " " + pick(rng_, kPrepositions) + " " + pick(rng_, kPlaces) + "?";
      break;
    case 2: {
      s = "The numbers were";
      int count = static_cast<int>(3 + rng_.below(3));
      for (int i = 0; i < count; ++i) {
        s += (i + 1 == count ? " and " : (i ? ", " : " ")) +
             number_word(static_cast<int>(rng_.below(100)));
      }
      s += ".";
      break;
    }
    case 3:
      s = capitalise(clause(rng_)) + ", " + pick(rng_, kConjunctions) + " " + clause(rng_) + ".";
      break;
    default:
      s = capitalise(clause(rng_)) + ".";
      break;
  }
  return s;
}

std::string SentenceGenerator::next_unique() {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    std::string s = next();
    if (used_.insert(s).second) return s;
  }
  throw std::runtime_error("SentenceGenerator: could not find an unused sentence");
}

}  // namespace contra::data
