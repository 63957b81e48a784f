#include "contra/nn/recurrent.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/nn/context_network.h"
#include "tests/support/support.h"

namespace contra::nn {
namespace {

using contra::testing::SeededTest;
class RecurrentTest : public SeededTest {};

/// The fused layer against torch::nn::GRU / LSTM with the same parameters: the outputs and the
/// gradients of the input and of every parameter, for an arbitrary upstream gradient.
void compare(bool gru, torch::ScalarType type, int64_t B, int64_t T, int64_t I, int64_t H,
             double tol) {
  torch::nn::AnyModule ref;
  std::shared_ptr<torch::nn::Module> module;
  if (gru) {
    auto m = torch::nn::GRU(torch::nn::GRUOptions(I, H).batch_first(true));
    module = m.ptr();
    ref = torch::nn::AnyModule(m);
  } else {
    auto m = torch::nn::LSTM(torch::nn::LSTMOptions(I, H).batch_first(true));
    module = m.ptr();
    ref = torch::nn::AnyModule(m);
  }
  module->to(type);
  auto params = module->named_parameters();
  std::vector<torch::Tensor> mine;
  for (const char* name : {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}) {
    mine.push_back(params[name].detach().clone().requires_grad_());
  }
  auto x = torch::randn({B, T, I}, type).requires_grad_();
  auto x2 = x.detach().clone().requires_grad_();
  auto y = gru ? functional::gru_sequence(x, mine[0], mine[1], mine[2], mine[3])
               : functional::lstm_sequence(x, mine[0], mine[1], mine[2], mine[3]);
  torch::Tensor y2 = gru ? std::get<0>(module->as<torch::nn::GRU>()->forward(x2))
                         : std::get<0>(module->as<torch::nn::LSTM>()->forward(x2));
  ASSERT_EQ(y.sizes(), y2.sizes());
  EXPECT_LT((y - y2).abs().max().item<double>(), tol) << (gru ? "gru" : "lstm");
  auto g = torch::randn_like(y);
  (y * g).sum().backward();
  (y2 * g).sum().backward();
  EXPECT_LT((x.grad() - x2.grad()).abs().max().item<double>(), tol) << (gru ? "gru" : "lstm");
  const char* names[] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"};
  for (int i = 0; i < 4; ++i) {
    const double scale = std::max(1.0, params[names[i]].grad().abs().max().item<double>());
    EXPECT_LT((mine[i].grad() - params[names[i]].grad()).abs().max().item<double>(), tol * scale)
        << (gru ? "gru " : "lstm ") << names[i];
  }
}

TEST_F(RecurrentTest, GruMatchesTorchGruInFloatAndDouble) {
  compare(true, torch::kFloat, 8, 128, 256, 256, 1e-5);  // the paper size
  compare(true, torch::kFloat, 3, 7, 5, 19, 1e-5);       // vector tails
  compare(true, torch::kDouble, 2, 9, 6, 21, 1e-12);
  compare(true, torch::kFloat, 4, 1, 8, 16, 1e-5);   // one step
  compare(true, torch::kFloat, 20, 6, 8, 16, 1e-5);  // more rows than the step kernel takes
}

TEST_F(RecurrentTest, LstmMatchesTorchLstmInFloatAndDouble) {
  compare(false, torch::kFloat, 8, 128, 256, 256, 1e-5);
  compare(false, torch::kFloat, 3, 7, 5, 19, 1e-5);
  compare(false, torch::kDouble, 2, 9, 6, 21, 1e-12);
  compare(false, torch::kFloat, 4, 1, 8, 16, 1e-5);
  compare(false, torch::kFloat, 11, 6, 8, 16, 1e-5);  // 8 rows, then 3
}

TEST_F(RecurrentTest, FiniteDifferenceGradientsInDouble) {
  for (bool gru : {true, false}) {
    const int64_t G = gru ? 3 : 4, H = 5, I = 4;
    std::vector<torch::Tensor> p{torch::randn({G * H, I}, torch::kDouble) * 0.5,
                                 torch::randn({G * H, H}, torch::kDouble) * 0.5,
                                 torch::randn({G * H}, torch::kDouble),
                                 torch::randn({G * H}, torch::kDouble)};
    auto x = torch::randn({2, 6, I}, torch::kDouble);
    std::vector<torch::Tensor*> all{&x};
    for (auto& t : p) {
      t.requires_grad_();
      all.push_back(&t);
    }
    x.requires_grad_();
    auto g = torch::randn({2, 6, H}, torch::kDouble);
    auto objective = [&] {
      auto y = gru ? functional::gru_sequence(x, p[0], p[1], p[2], p[3])
                   : functional::lstm_sequence(x, p[0], p[1], p[2], p[3]);
      return (y * g).sum();
    };
    objective().backward();
    torch::NoGradGuard no_grad;
    const double h = 1e-6;
    for (auto* t : all) {
      auto flat = t->view({-1});
      auto grad = t->grad().view({-1});
      for (int64_t i = 0; i < flat.numel(); i += 3) {
        const double v = flat[i].item<double>();
        flat[i] = v + h;
        const double up = objective().item<double>();
        flat[i] = v - h;
        const double down = objective().item<double>();
        flat[i] = v;
        EXPECT_NEAR(grad[i].item<double>(), (up - down) / (2 * h), 1e-7) << gru << " " << i;
      }
    }
  }
}

TEST_F(RecurrentTest, WithoutBiasesAndWithoutGradients) {
  auto x = torch::randn({2, 5, 4});
  auto w_ih = torch::randn({9, 4}), w_hh = torch::randn({9, 3});
  auto y = functional::gru_sequence(x, w_ih, w_hh, {}, {});
  auto params = std::vector<torch::Tensor>{w_ih, w_hh, torch::zeros({9}), torch::zeros({9})};
  auto ref =
      std::get<0>(torch::gru(x, torch::zeros({1, 2, 3}), params, true, 1, 0.0, false, false, true));
  EXPECT_TRUE(torch::allclose(y, ref, 1e-5, 1e-6));
  EXPECT_FALSE(y.requires_grad());
}

TEST_F(RecurrentTest, ContextNetworkStacksLayersLikeTheTorchModule) {
  for (const char* type : {"gru", "lstm"}) {
    ContextNetwork net(ContextNetworkOptions(12).type(type).hidden_size(16).layers(2));
    auto z = torch::randn({3, 11, 12});
    auto c = net->forward(z);
    auto child = net->named_children()[type];
    auto ref = std::string(type) == "gru" ? std::get<0>(child->as<torch::nn::GRU>()->forward(z))
                                          : std::get<0>(child->as<torch::nn::LSTM>()->forward(z));
    EXPECT_TRUE(torch::allclose(c, ref, 1e-5, 1e-6)) << type;
  }
}

TEST_F(RecurrentTest, BadShapesThrow) {
  auto x = torch::randn({2, 5, 4});
  EXPECT_THROW(functional::gru_sequence(x, torch::randn({9, 3}), torch::randn({9, 3}), {}, {}),
               c10::Error);
  EXPECT_THROW(functional::gru_sequence(x, torch::randn({9, 4}), torch::randn({8, 3}), {}, {}),
               c10::Error);
  EXPECT_THROW(functional::lstm_sequence(x, torch::randn({12, 4}), torch::randn({12, 3}),
                                         torch::ones({5}), {}),
               c10::Error);
  EXPECT_THROW(functional::gru_sequence(torch::randn({2, 4}), torch::randn({9, 4}),
                                        torch::randn({9, 3}), {}, {}),
               c10::Error);
}

}  // namespace
}  // namespace contra::nn
