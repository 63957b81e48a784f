#include "contra/nn/context_network.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/nn/cpc_predictor.h"
#include "tests/support/support.h"

namespace contra::nn {
namespace {

using contra::testing::SeededTest;
class ContextNetworkTest : public SeededTest {};

TEST_F(ContextNetworkTest, ShapesForEveryType) {
  for (const char* type : {"gru", "lstm", "transformer"}) {
    ContextNetwork net(ContextNetworkOptions(12).type(type).hidden_size(16).heads(4).layers(2));
    auto c = net->forward(torch::randn({3, 7, 12}));
    EXPECT_EQ(c.sizes(), (std::vector<int64_t>{3, 7, 16})) << type;
  }
}

TEST_F(ContextNetworkTest, CausalForEveryType) {
  // Changing z_t0 leaves c_<t0 unchanged and changes c_t0.
  const int64_t t0 = 5;
  for (const char* type : {"gru", "lstm", "transformer"}) {
    ContextNetwork net(ContextNetworkOptions(8).type(type).hidden_size(16).heads(2).layers(2));
    net->eval();
    auto z = torch::randn({2, 10, 8});
    auto z2 = z.clone();
    z2.select(1, t0).add_(torch::randn({2, 8}));
    auto a = net->forward(z), b = net->forward(z2);
    EXPECT_TRUE(torch::allclose(a.narrow(1, 0, t0), b.narrow(1, 0, t0), 1e-6, 1e-6)) << type;
    EXPECT_GT((a.select(1, t0) - b.select(1, t0)).abs().max().item<double>(), 1e-4) << type;
  }
}

TEST_F(ContextNetworkTest, CausalMaskAndPositions) {
  auto mask = functional::causal_mask(3, torch::kFloat);
  EXPECT_EQ(mask[0][0].item<float>(), 0.f);
  EXPECT_EQ(mask[2][1].item<float>(), 0.f);
  EXPECT_TRUE(std::isinf(mask[0][1].item<float>()));
  auto pe = functional::sinusoidal_positions(4, 6, torch::kFloat);
  EXPECT_EQ(pe.sizes(), (std::vector<int64_t>{4, 6}));
  EXPECT_NEAR(pe[2][0].item<double>(), std::sin(2.0), 1e-6);
  EXPECT_NEAR(pe[2][1].item<double>(), std::cos(2.0), 1e-6);
  EXPECT_NEAR(pe[3][2].item<double>(), std::sin(3.0 * std::pow(10000.0, -2.0 / 6)), 1e-6);
}

TEST_F(ContextNetworkTest, InvalidOptionsThrowConfigError) {
  EXPECT_THROW(ContextNetwork(ContextNetworkOptions(8).type("rnn")), ConfigError);
  EXPECT_THROW(
      ContextNetwork(ContextNetworkOptions(8).type("transformer").hidden_size(10).heads(4)),
      ConfigError);
  EXPECT_THROW(ContextNetwork(ContextNetworkOptions(8).layers(0)), ConfigError);
}

class CpcPredictorTest : public SeededTest {};

TEST_F(CpcPredictorTest, OneLinearPerStep) {
  CpcPredictor pred(CpcPredictorOptions(6, 5).steps(3));
  auto c = torch::randn({2, 4, 6});
  auto p = pred->forward(c);
  ASSERT_EQ(p.sizes(), (std::vector<int64_t>{2, 4, 3, 5}));
  auto w = pred->named_parameters()["linear.weight"];  // (K·C, H)
  for (int64_t k = 0; k < 3; ++k) {
    auto expected = torch::matmul(c, w.narrow(0, k * 5, 5).t());
    EXPECT_TRUE(torch::allclose(p.select(2, k), expected, 1e-5, 1e-6)) << k;
  }
}

TEST_F(CpcPredictorTest, TransformerHeadIsCausal) {
  CpcPredictor pred(CpcPredictorOptions(8, 4).steps(2).head("transformer").heads(2));
  pred->eval();
  auto c = torch::randn({1, 6, 8});
  auto c2 = c.clone();
  c2.select(1, 3).add_(1.0);
  auto a = pred->forward(c), b = pred->forward(c2);
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{1, 6, 2, 4}));
  EXPECT_TRUE(torch::allclose(a.narrow(1, 0, 3), b.narrow(1, 0, 3), 1e-6, 1e-6));
  EXPECT_GT((a.select(1, 3) - b.select(1, 3)).abs().max().item<double>(), 1e-5);
}

TEST_F(CpcPredictorTest, InvalidOptionsThrowConfigError) {
  EXPECT_THROW(CpcPredictor(CpcPredictorOptions(8, 4).steps(0)), ConfigError);
  EXPECT_THROW(CpcPredictor(CpcPredictorOptions(8, 4).head("mlp")), ConfigError);
}

}  // namespace
}  // namespace contra::nn
