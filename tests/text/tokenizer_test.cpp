// The SentencePiece tokeniser (through its plug-in): training, round trip, ids, padding and
// truncation, serialisation.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/text/tokenizer.h"
#include "tests/support/support.h"

namespace contra::text {
namespace {

std::vector<std::string> corpus() {
  std::vector<std::string> out;
  const std::vector<std::string> words = {"zero", "one", "two",   "three", "four",
                                          "five", "six", "seven", "eight", "nine"};
  const std::vector<std::string> adjectives = {"thin", "thick", "upright", "right-slanted", ""};
  for (size_t i = 0; i < 400; ++i) {
    const auto& a = adjectives[i % adjectives.size()];
    out.push_back("a photo of a " + (a.empty() ? "" : a + " ") + words[i % words.size()]);
    out.push_back("the handwritten digit " + words[(i * 7) % words.size()]);
  }
  return out;
}

TEST(Tokenizer, RoundTripsTrainingTextAndLowerCases) {
  for (const std::string type : {"bpe", "unigram"}) {
    TokenizerConfig c;
    c.model_type = type;
    c.vocab_size = 80;
    Tokenizer t = Tokenizer::train(corpus(), c);
    EXPECT_LE(t.vocab_size(), 80) << type;
    EXPECT_GT(t.vocab_size(), 20) << type;
    const std::string text = "a photo of a thick seven";
    std::vector<int> ids = t.pieces(text);
    ASSERT_FALSE(ids.empty());
    for (int id : ids) {
      EXPECT_GT(id, Tokenizer::kEnd) << type;  // learned pieces never use the special ids
      EXPECT_LT(id, t.vocab_size()) << type;
    }
    EXPECT_EQ(t.decode(ids), text) << type;
    EXPECT_EQ(t.pieces("A Photo of a THICK Seven"), ids) << type;  // case folded
    EXPECT_EQ(t.piece_strings(text).size(), ids.size()) << type;
  }
}

TEST(Tokenizer, EncodesStartEndAndPadding) {
  Tokenizer t = Tokenizer::train(corpus(), {});
  const auto pieces = t.pieces("the handwritten digit two");
  const int64_t n = static_cast<int64_t>(pieces.size());
  torch::Tensor ids = t.encode("the handwritten digit two", n + 5);
  ASSERT_EQ(ids.numel(), n + 5);
  EXPECT_EQ(ids[0].item<int64_t>(), Tokenizer::kStart);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(ids[i + 1].item<int64_t>(), pieces[i]);
  EXPECT_EQ(ids[n + 1].item<int64_t>(), Tokenizer::kEnd);
  for (int64_t i = n + 2; i < n + 5; ++i) EXPECT_EQ(ids[i].item<int64_t>(), Tokenizer::kPad);
  // Decoding skips the special ids.
  std::vector<int> all(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
  EXPECT_EQ(t.decode(all), "the handwritten digit two");
}

TEST(Tokenizer, TruncatesButAlwaysEndsWithEnd) {
  Tokenizer t = Tokenizer::train(corpus(), {});
  const std::string long_text = "a photo of a thick seven a photo of a thin nine the digit two";
  const auto pieces = t.pieces(long_text);
  ASSERT_GT(pieces.size(), 6u);
  torch::Tensor ids = t.encode(long_text, 6);
  ASSERT_EQ(ids.numel(), 6);
  EXPECT_EQ(ids[0].item<int64_t>(), Tokenizer::kStart);
  for (int64_t i = 0; i < 4; ++i) EXPECT_EQ(ids[i + 1].item<int64_t>(), pieces[i]);
  EXPECT_EQ(ids[5].item<int64_t>(), Tokenizer::kEnd);
  EXPECT_THROW(t.encode(long_text, 2), ConfigError);
  auto batch = t.encode_batch({"one", long_text}, 6);
  EXPECT_EQ(batch.sizes(), (std::vector<int64_t>{2, 6}));
}

TEST(Tokenizer, SerialisedModelLoadsToTheSameTokeniser) {
  Tokenizer t = Tokenizer::train(corpus(), {});
  Tokenizer u = Tokenizer::load(tensor_to_bytes(bytes_to_tensor(t.serialized())));
  EXPECT_EQ(u.serialized(), t.serialized());
  EXPECT_EQ(u.pieces("a thin eight"), t.pieces("a thin eight"));
  // Training is deterministic.
  EXPECT_EQ(Tokenizer::train(corpus(), {}).serialized(), t.serialized());
}

TEST(Tokenizer, UnseenCharactersMapToUnknown) {
  Tokenizer t = Tokenizer::train(corpus(), {});
  auto ids = t.pieces("seven \xE2\x9C\x93");  // a check mark never seen in training
  EXPECT_NE(std::find(ids.begin(), ids.end(), Tokenizer::kUnknown), ids.end());
}

TEST(Tokenizer, RejectsBadConfigAndBadBytes) {
  TokenizerConfig c;
  c.model_type = "wordpiece";
  EXPECT_THROW(Tokenizer::train(corpus(), c), ConfigError);
  c = {};
  c.vocab_size = 4;
  EXPECT_THROW(Tokenizer::train(corpus(), c), ConfigError);
  contra::testing::expect_data_error([] { Tokenizer::train({"", "  "}, {}); }, "no non-empty text");
  contra::testing::expect_data_error([] { Tokenizer::load("not a model"); },
                                     "not a SentencePiece model");
  contra::testing::expect_data_error([] { Tokenizer::load(""); }, "empty model");
}

}  // namespace
}  // namespace contra::text
