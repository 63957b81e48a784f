#include "contra/loss/registry.h"

#include <gmock/gmock.h>

#include "contra/loss/nt_xent.h"
#include "contra/loss/triplet.h"
#include "tests/loss/loss_testing.h"

namespace contra::loss {
namespace {

using namespace contra::testing;
using ::testing::ElementsAre;

class LossRegistryTest : public SeededTest {};

TEST_F(LossRegistryTest, ListsEveryBuiltinLoss) {
  EXPECT_THAT(builtin_losses().names(),
              ElementsAre("contrastive", "triplet", "lifted_structured", "nce", "info_nce",
                          "nt_xent", "soft_nearest_neighbors", "debiased", "hard_negative",
                          "supcon", "barlow_twins", "byol", "clip", "swav"));
  for (const auto& e : builtin_losses().entries()) {
    EXPECT_FALSE(e.paper.empty()) << e.name;
    EXPECT_FALSE(e.formula.empty()) << e.name;
    EXPECT_FALSE(e.signature.empty()) << e.name;
    EXPECT_NO_THROW(builtin_losses().make(e.name)) << e.name;
  }
}

TEST_F(LossRegistryTest, BuildsFromConfigWithOptions) {
  auto tree = ConfigTree::from_string(
      "method:\n  loss:\n    name: nt_xent\n    temperature: 0.25\n", "m.yaml");
  torch::nn::AnyModule loss = builtin_losses().make(tree, "method.loss");
  torch::Tensor z1 = torch::randn({4, 3}), z2 = torch::randn({4, 3});
  EXPECT_TRUE(torch::equal(loss.forward(z1, z2),
                           functional::nt_xent(z1, z2, {}, NTXentOptions().temperature(0.25))));

  auto mined = ConfigTree::from_string("loss: {name: triplet, margin: 0.5, mining: semi_hard}\n");
  torch::Tensor x = torch::randn({6, 3});
  torch::Tensor labels = torch::tensor({0, 0, 1, 1, 2, 2});
  EXPECT_TRUE(
      torch::equal(builtin_losses().make(mined, "loss").forward(x, labels),
                   functional::triplet_mined(
                       x, labels, TripletOptions().margin(0.5).mining(TripletMining::kSemiHard))));
}

TEST_F(LossRegistryTest, ReportsBadNamesKeysAndValues) {
  expect_throws_with<ConfigError>([] { builtin_losses().make("ntxent"); }, "nt_xent");
  expect_throws_with<ConfigError>(
      [] {
        builtin_losses().make(ConfigTree::from_string("loss:\n  name: infonce\n", "m.yaml"),
                              "loss");
      },
      "m.yaml:2");
  expect_throws_with<ConfigError>(
      [] {
        builtin_losses().make(
            ConfigTree::from_string("loss:\n  name: nt_xent\n  temprature: 0.1\n", "m.yaml"),
            "loss");
      },
      "loss.temprature");
  expect_throws_with<ConfigError>(
      [] {
        builtin_losses().make(
            ConfigTree::from_string("loss:\n  name: nt_xent\n  temperature: -1\n", "m.yaml"),
            "loss");
      },
      "loss.temperature: must be > 0 (got -1)");
  expect_throws_with<ConfigError>(
      [] { builtin_losses().make(ConfigTree::from_string("loss: {}\n"), "loss"); },
      "must name a loss");
  LossRegistry r;
  register_builtin_losses(r);
  expect_throws_with<ConfigError>([&] { register_builtin_losses(r); }, "twice");
}

}  // namespace
}  // namespace contra::loss
