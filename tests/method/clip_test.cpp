// The CLIP method: both pairings, features, the tokeniser and normalisation kept in buffers, the
// clamped logit scale, and zero-shot on a tiny separable toy.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/data/captions.h"
#include "contra/eval/clip_eval.h"
#include "contra/method/clip.h"
#include "tests/support/support.h"

namespace contra::method {
namespace {

using contra::testing::SeededTest;
class ClipMethodTest : public SeededTest {};

ClipConfig tiny_config() {
  ClipConfig c;
  c.embed_dim = 8;
  c.image.image_size = 8;
  c.image.patch_size = 4;
  c.image.width = 16;
  c.image.layers = 1;
  c.image.heads = 2;
  c.text.context_length = 12;
  c.text.width = 16;
  c.text.layers = 1;
  c.text.heads = 2;
  c.text.tokenizer.vocab_size = 64;
  return c;
}

const std::vector<std::string>& names() {
  static const std::vector<std::string> n = {"apple", "banana", "cherry", "grape"};
  return n;
}
const std::vector<std::string>& templates() {
  static const std::vector<std::string> t = {"a photo of {a}", "{a} on a table", "a picture of {a}",
                                             "a drawing of {a}", "{a}, seen from above"};
  return t;
}

// Class c: a bright 4×4 quadrant c of an 8×8 image, plus noise.
torch::Tensor toy_images(const torch::Tensor& labels) {
  auto x = torch::randn({labels.size(0), 1, 8, 8}) * 0.3;
  for (int64_t i = 0; i < labels.size(0); ++i) {
    const int64_t c = labels[i].item<int64_t>();
    x[i][0].narrow(0, (c / 2) * 4, 4).narrow(1, (c % 2) * 4, 4) += 2.0;
  }
  return x;
}

text::Tokenizer toy_tokenizer() {
  std::vector<std::string> corpus;
  for (const auto& t : templates())
    for (const auto& n : names()) corpus.push_back(data::fill_template(t, n));
  corpus.push_back("this is an apple");  // the held-out template's words are known pieces
  text::TokenizerConfig tc;
  tc.vocab_size = 64;
  return text::Tokenizer::train(corpus, tc);
}

TEST_F(ClipMethodTest, StepTrainsBothEncodersAndReportsMetrics) {
  Clip m(tiny_config());
  m.set_tokenizer(toy_tokenizer());
  Batch b;
  auto labels = torch::arange(8) % 4;
  b.input = toy_images(labels);
  std::vector<std::string> captions;
  for (int64_t i = 0; i < 8; ++i) captions.push_back("a photo of " + names()[i % 4]);
  b.extra["text_tokens"] = m.tokenize(captions);
  auto out = m.step(b);
  EXPECT_TRUE(std::isfinite(out.loss.item<double>()));
  out.loss.backward();
  EXPECT_GT(m.vit->conv1->weight.grad().abs().sum().item<double>(), 0);
  EXPECT_GT(m.text->token_embedding->weight.grad().abs().sum().item<double>(), 0);
  EXPECT_TRUE(m.loss->log_scale.grad().defined());
  for (const char* k : {"i2t_acc", "t2i_acc", "pos_sim", "neg_sim", "logit_scale"})
    EXPECT_TRUE(out.metrics.count(k)) << k;
  EXPECT_NEAR(out.metrics["logit_scale"], 1 / 0.07, 1e-3);
  EXPECT_EQ(m.features(b.input, "image").sizes(), (std::vector<int64_t>{8, 16}));
  auto e = m.features(b.input, "image_embedding");
  EXPECT_TRUE(torch::allclose(e.norm(2, 1), torch::ones({8}), 1e-5, 1e-5));
  EXPECT_EQ(m.features(b.extra["text_tokens"], "text_embedding").sizes(),
            (std::vector<int64_t>{8, 8}));
  EXPECT_NE(
      contra::testing::config_error([&] { m.features(b.input, "audio"); }).find("text_embedding"),
      std::string::npos);
  Batch missing;
  missing.input = b.input;
  contra::testing::expect_data_error([&] { m.step(missing); }, "no 'text_tokens'");
}

TEST_F(ClipMethodTest, LogitScaleIsClampedAtItsMaximum) {
  Clip m(tiny_config());
  {
    torch::NoGradGuard g;
    m.loss->log_scale.fill_(10.0);
  }
  EXPECT_NEAR(m.logit_scale(), 100.0, 1e-9);
}

TEST_F(ClipMethodTest, TokeniserAndStatisticsTravelWithTheModule) {
  Clip a(tiny_config());
  auto tok = toy_tokenizer();
  a.set_tokenizer(tok);
  a.set_image_stats({0.25}, {0.5});
  contra::testing::TempDir d;
  torch::serialize::OutputArchive out;
  a.save(out);
  out.save_to(d.file("m.pt"));
  Clip b(tiny_config());
  EXPECT_FALSE(b.has_tokenizer());
  EXPECT_THROW(b.tokenizer(), ConfigError);
  torch::serialize::InputArchive in;
  in.load_from(d.file("m.pt"));
  b.load(in);
  ASSERT_TRUE(b.has_tokenizer());
  EXPECT_EQ(b.tokenizer().serialized(), tok.serialized());
  EXPECT_TRUE(torch::equal(b.tokenize({"a photo of a grape"}), a.tokenize({"a photo of a grape"})));
  EXPECT_EQ(b.image_stats().first, std::vector<double>{0.25});
  EXPECT_EQ(b.image_stats().second, std::vector<double>{0.5});
  EXPECT_THROW(b.set_image_stats({0.1, 0.2}, {1, 1}),
               ConfigError);  // 2 channels for a 1-channel model
  text::TokenizerConfig big;
  big.vocab_size = 500;
  Clip small(tiny_config());
  std::vector<std::string> many;
  for (int i = 0; i < 300; ++i) many.push_back("word" + std::to_string(i * 7919));
  EXPECT_THROW(small.set_tokenizer(text::Tokenizer::train(many, big)), ConfigError);
}

TEST_F(ClipMethodTest, ZeroShotOnATinySeparableToyReachesOneHundredPercent) {
  Clip m(tiny_config());
  m.set_tokenizer(toy_tokenizer());
  torch::optim::Adam opt(m.parameters(), torch::optim::AdamOptions(1e-3));
  m.train();
  for (int step = 0; step < 400; ++step) {
    auto labels = torch::randperm(4).repeat({4});  // 16 pairs, every class 4 times
    Batch b;
    b.input = toy_images(labels);
    std::vector<std::string> captions;
    for (int64_t i = 0; i < 16; ++i) {
      captions.push_back(data::fill_template(templates()[(step + i) % templates().size()],
                                             names()[labels[i].item<int64_t>()]));
    }
    b.extra["text_tokens"] = m.tokenize(captions);
    opt.zero_grad();
    m.step(b).loss.backward();
    opt.step();
  }
  m.eval();
  torch::NoGradGuard g;
  auto labels = torch::arange(40) % 4;
  auto images = m.features(toy_images(labels), "image_embedding");
  auto embed = [&](const std::vector<std::string>& t) {
    return m.features(m.tokenize(t), "text_embedding");
  };
  EXPECT_EQ(eval::zero_shot(images, labels, eval::zero_shot_weights(embed, names(), templates()))
                .accuracy,
            1.0);
  // A template never seen in training.
  auto r =
      eval::zero_shot(images, labels, eval::zero_shot_weights(embed, names(), {"this is {a}"}));
  EXPECT_EQ(r.accuracy, 1.0);
}

TEST_F(ClipMethodTest, AudioImagePairing) {
  ClipAudioConfig c;
  c.embed_dim = 8;
  c.image.type = "small_cnn";
  c.image.width = 4;
  c.audio.encoder.channels = 8;
  c.audio.context.hidden = 8;
  Clip m(c);
  EXPECT_EQ(m.name(), "clip_audio");
  EXPECT_TRUE(m.is_audio());
  Batch b;
  b.input = torch::randn({4, 1, 28, 28});
  b.extra["audio"] = torch::randn({4, 1, 1600});
  auto out = m.step(b);
  EXPECT_TRUE(std::isfinite(out.loss.item<double>()));
  out.loss.backward();
  EXPECT_GT(m.audio_projection->weight.grad().abs().sum().item<double>(), 0);
  EXPECT_GT(m.image_projection->weight.grad().abs().sum().item<double>(), 0);
  EXPECT_EQ(m.features(b.extra["audio"], "audio").sizes(), (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(m.features(b.extra["audio"], "audio_embedding").sizes(), (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(m.features(b.input, "image").sizes(), (std::vector<int64_t>{4, 16}));
  EXPECT_THROW(m.tokenizer(), ConfigError);
  b.extra["audio"] = torch::randn({3, 1, 1600});
  contra::testing::expect_data_error([&] { m.step(b); }, "4 images but 3 audio clips");
}

TEST_F(ClipMethodTest, RejectsBadConfigs) {
  ClipConfig c = tiny_config();
  c.image.type = "vgg";
  EXPECT_THROW(Clip{c}, ConfigError);
  c = tiny_config();
  c.image.patch_size = 3;
  EXPECT_THROW(Clip{c}, ConfigError);
  c = tiny_config();
  c.text.heads = 5;
  EXPECT_THROW(Clip{c}, ConfigError);
  c = tiny_config();
  c.embed_dim = 0;
  EXPECT_THROW(Clip{c}, ConfigError);
}

}  // namespace
}  // namespace contra::method
