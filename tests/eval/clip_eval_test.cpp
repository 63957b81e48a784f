// Zero-shot with prompt ensembling, recall@k and caption probabilities on hand-built embeddings.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/eval/clip_eval.h"

namespace contra::eval {
namespace {

torch::Tensor unit(const torch::Tensor& x) { return x / x.norm(2, -1, true); }

TEST(RecallAtK, RanksByCosineAndCountsAnyRelevantItem) {
  auto gallery = torch::eye(4) * 3.0;                        // scale does not matter (cosine)
  auto queries = torch::tensor({{0.5f, 0.1f, 0.9f, 0.0f},    // order 2, 0, 1, 3
                                {0.0f, 1.0f, 0.0f, 0.2f},    // order 1, 3, ...
                                {0.3f, 0.2f, 0.1f, 1.0f},    // order 3, 0, 1, 2
                                {1.0f, 0.9f, 0.0f, 0.0f}});  // order 0, 1, ...
  auto relevant = torch::zeros({4, 4}, torch::kBool);
  relevant[0][0] = true;  // second
  relevant[1][1] = true;  // first
  relevant[2][2] = true;  // last
  relevant[3][1] = true;  // second (of two relevant)
  relevant[3][3] = true;
  auto r = recall_at_k(queries, gallery, relevant, {1, 2, 3, 10});
  EXPECT_DOUBLE_EQ(r.at(1), 0.25);
  EXPECT_DOUBLE_EQ(r.at(2), 0.75);
  EXPECT_DOUBLE_EQ(r.at(3), 0.75);
  EXPECT_DOUBLE_EQ(r.at(10), 1.0);  // k beyond the gallery: all of it
  EXPECT_THROW(recall_at_k(queries, gallery, relevant, {0}), ConfigError);
  EXPECT_THROW(recall_at_k(queries, gallery, relevant.narrow(1, 0, 3), {1}), c10::Error);
}

TEST(RecallAtK, SameLabelRelevance) {
  auto rel = same_label(torch::tensor({0, 1}), torch::tensor({1, 0, 1}));
  EXPECT_TRUE(torch::equal(rel, torch::tensor({{false, true, false}, {true, false, true}})));
}

TEST(ZeroShot, EnsemblesNormalisedPromptEmbeddings) {
  // "cat" → e0, "dog" → e1; the template adds its own direction with its own weight.
  auto embed = [](const std::vector<std::string>& texts) {
    std::vector<torch::Tensor> rows;
    for (const auto& t : texts) {
      auto v = torch::zeros({4});
      v[t.find("cat") != std::string::npos ? 0 : 1] = 1.0;
      if (t.rfind("a photo", 0) == 0) v[2] = 2.0;
      if (t.rfind("this is", 0) == 0) v[3] = 0.5;
      rows.push_back(v);
    }
    return torch::stack(rows);
  };
  auto w = zero_shot_weights(embed, {"cat", "dog"}, {"a photo of {a}", "this is {a}"});
  auto expected_cat = unit(unit(torch::tensor({1.0f, 0.0f, 2.0f, 0.0f})) +
                           unit(torch::tensor({1.0f, 0.0f, 0.0f, 0.5f})));
  EXPECT_TRUE(torch::allclose(w[0], expected_cat, 1e-6, 1e-6));
  EXPECT_NEAR(w[1].norm().item<double>(), 1.0, 1e-6);
  auto images =
      torch::tensor({{2.0f, 0.1f, 0.0f, 0.0f}, {0.0f, 1.0f, 0.0f, 0.0f}, {0.9f, 0.0f, 0.0f, 0.0f}});
  auto r = zero_shot(images, torch::tensor({0, 1, 1}), w);
  EXPECT_NEAR(r.accuracy, 2.0 / 3.0, 1e-9);
  EXPECT_TRUE(torch::equal(r.predictions, torch::tensor({0, 1, 0})));
  EXPECT_DOUBLE_EQ(r.per_class[0], 1.0);
  EXPECT_DOUBLE_EQ(r.per_class[1], 0.5);
  auto only_cats = zero_shot(images.narrow(0, 0, 1), torch::tensor({0}), w);
  EXPECT_TRUE(std::isnan(only_cats.per_class[1]));  // no dog images
  EXPECT_THROW(zero_shot_weights(embed, {}, {"{}"}), ConfigError);
  EXPECT_THROW(zero_shot_weights(embed, {"cat"}, {"no placeholder"}), ConfigError);
}

TEST(CaptionProbabilities, SoftmaxOfScaledCosine) {
  auto p = caption_probabilities(torch::tensor({2.0f, 0.0f}),
                                 torch::tensor({{1.0f, 0.0f}, {0.0f, 3.0f}, {1.0f, 1.0f}}), 10.0);
  const double a = std::exp(10.0), b = 1.0, c = std::exp(10.0 / std::sqrt(2.0));
  EXPECT_NEAR(p[0].item<double>(), a / (a + b + c), 1e-5);
  EXPECT_NEAR(p[1].item<double>(), b / (a + b + c), 1e-5);
  EXPECT_NEAR(p.sum().item<double>(), 1.0, 1e-6);
}

}  // namespace
}  // namespace contra::eval
