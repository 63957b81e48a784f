#include "contra/nn/batch_norm_relu.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/nn/conv_encoder.h"
#include "tests/support/support.h"

namespace contra::nn {
namespace {

using contra::testing::SeededTest;
class BatchNormReluTest : public SeededTest {};

/// The fused op and torch::nn::BatchNorm1d + relu on the same input: outputs, running statistics
/// and the gradients of x, γ and β.
void compare(torch::ScalarType type, std::vector<int64_t> shape, double tol, bool affine = true) {
  const int64_t C = shape[1];
  auto x = (torch::randn(shape, type) * 3 + 1.5).requires_grad_();  // mean far from 0
  auto x2 = x.detach().clone().requires_grad_();
  torch::nn::BatchNorm1d ref(torch::nn::BatchNorm1dOptions(C).affine(affine));
  ref->to(type);
  torch::Tensor weight, bias;
  if (affine) {
    torch::NoGradGuard no_grad;
    ref->weight.copy_(torch::rand({C}, type) + 0.5);
    ref->bias.copy_(torch::randn({C}, type));
    weight = ref->weight.detach().clone().requires_grad_();
    bias = ref->bias.detach().clone().requires_grad_();
  }
  auto rm = ref->running_mean.clone(), rv = ref->running_var.clone();
  auto y = functional::batch_norm_relu(x, weight, bias, rm, rv, true, 0.1, 1e-5);
  auto y2 = torch::relu(ref->forward(x2));
  ASSERT_EQ(y.sizes(), y2.sizes());
  EXPECT_TRUE(torch::allclose(y, y2, tol, tol)) << (y - y2).abs().max().item<double>();
  EXPECT_TRUE(torch::allclose(rm, ref->running_mean, tol, tol));
  EXPECT_TRUE(torch::allclose(rv, ref->running_var, tol, tol));
  auto g = torch::randn(shape, type);
  (y * g).sum().backward();
  (y2 * g).sum().backward();
  EXPECT_TRUE(torch::allclose(x.grad(), x2.grad(), tol, tol))
      << (x.grad() - x2.grad()).abs().max().item<double>();
  if (affine) {
    EXPECT_TRUE(torch::allclose(weight.grad(), ref->weight.grad(), tol * 10, tol * 10));
    EXPECT_TRUE(torch::allclose(bias.grad(), ref->bias.grad(), tol * 10, tol * 10));
  }
}

TEST_F(BatchNormReluTest, MatchesBatchNorm1dThenReluInFloatAndDouble) {
  compare(torch::kFloat, {8, 32, 4096}, 1e-4);  // the CPC first layer's length
  compare(torch::kFloat, {3, 5, 37}, 1e-5);     // vector tails
  compare(torch::kDouble, {4, 6, 53}, 1e-11);
  compare(torch::kDouble, {9, 7}, 1e-11);  // (N, C)
  compare(torch::kFloat, {4, 6, 40}, 1e-5, /*affine=*/false);
}

TEST_F(BatchNormReluTest, FiniteDifferenceGradientInDouble) {
  auto x = torch::randn({3, 4, 9}, torch::kDouble).requires_grad_();
  auto w = (torch::rand({4}, torch::kDouble) + 0.5).requires_grad_();
  auto b = torch::randn({4}, torch::kDouble).requires_grad_();
  auto g = torch::randn({3, 4, 9}, torch::kDouble);
  auto objective = [&] {
    return (functional::batch_norm_relu(x, w, b, {}, {}, true, 0.1, 1e-5) * g).sum();
  };
  objective().backward();
  torch::NoGradGuard no_grad;
  const double h = 1e-6;
  for (auto* t : {&x, &w, &b}) {
    auto flat = t->view({-1});
    auto grad = t->grad().view({-1});
    for (int64_t i = 0; i < flat.numel(); i += 5) {
      const double v = flat[i].item<double>();
      flat[i] = v + h;
      const double up = objective().item<double>();
      flat[i] = v - h;
      const double down = objective().item<double>();
      flat[i] = v;
      EXPECT_NEAR(grad[i].item<double>(), (up - down) / (2 * h), 1e-6) << i;
    }
  }
}

TEST_F(BatchNormReluTest, EvalModeUsesTheRunningStatistics) {
  auto x = torch::randn({2, 3, 10});
  auto rm = torch::randn({3}), rv = torch::rand({3}) + 0.5;
  auto w = torch::rand({3}), b = torch::randn({3});
  auto y = functional::batch_norm_relu(x, w, b, rm, rv, false, 0.1, 1e-5);
  auto ref = torch::relu((x - rm.view({1, 3, 1})) / (rv.view({1, 3, 1}) + 1e-5).sqrt() *
                             w.view({1, 3, 1}) +
                         b.view({1, 3, 1}));
  EXPECT_TRUE(torch::allclose(y, ref, 1e-5, 1e-6));
}

TEST_F(BatchNormReluTest, ResultsDoNotDependOnTheThreadCount) {
  auto x = torch::randn({8, 64, 512});
  auto g = torch::randn({8, 64, 512});
  const int threads = at::get_num_threads();
  std::vector<torch::Tensor> out;
  for (int n : {1, 2}) {
    at::set_num_threads(n);
    auto xi = x.clone().requires_grad_();
    auto w = torch::ones({64}).requires_grad_();
    auto y = functional::batch_norm_relu(xi, w, torch::zeros({64}), {}, {}, true, 0.1, 1e-5);
    (y * g).sum().backward();
    out.push_back(torch::cat({y.flatten(), xi.grad().flatten(), w.grad()}));
  }
  at::set_num_threads(threads);
  EXPECT_TRUE(out[0].equal(out[1]));
}

TEST_F(BatchNormReluTest, EncoderWithBatchNormMatchesTheModuleFormulation) {
  // ConvEncoder(norm batch) uses the fused op; the same layers written with torch modules give
  // the same output, running statistics and counter.
  ConvEncoder enc(ConvEncoderOptions().channels(16).norm("batch"));
  auto x = torch::randn({2, 1, 4000});
  auto z = enc->forward(x);
  torch::Tensor h = x;
  auto convs = enc->named_children()["convs"];
  auto norms = enc->named_children()["norms"];
  ASSERT_TRUE(convs && norms);
  ConvEncoder fresh(ConvEncoderOptions().channels(16).norm("batch"));
  {
    torch::NoGradGuard no_grad;
    auto src = enc->named_parameters();
    for (auto& p : fresh->named_parameters()) p.value().copy_(src[p.key()]);
  }
  for (std::size_t i = 0; i < 5; ++i) {
    auto conv = fresh->named_children()["convs"]->children()[i]->as<torch::nn::Conv1d>();
    auto bn = fresh->named_children()["norms"]->children()[i]->as<torch::nn::BatchNorm1d>();
    h = torch::relu(bn->forward(conv->forward(h)));
  }
  EXPECT_TRUE(torch::allclose(z, h.transpose(1, 2), 1e-4, 1e-5));
  auto b1 = enc->named_buffers(), b2 = fresh->named_buffers();
  for (const auto& item : b1) {
    EXPECT_TRUE(torch::allclose(item.value().to(torch::kDouble), b2[item.key()].to(torch::kDouble),
                                1e-5, 1e-6))
        << item.key();
  }
  EXPECT_EQ(b1["norms.0.num_batches_tracked"].item<int64_t>(), 1);
}

TEST_F(BatchNormReluTest, AnInputBiasLeftOutChangesOnlyTheRunningMean) {
  // The conv bias before a training-mode batch norm cancels: leaving it out of x and passing it as
  // input_bias gives the same output, gradient and running statistics as adding it to x.
  for (bool fused : {true, false}) {
    auto x = torch::randn({4, 5, 33}, fused ? torch::kFloat : torch::kDouble).requires_grad_();
    auto bias = torch::randn({5}, x.options().requires_grad(false)) * 3;
    auto w = torch::rand({5}, x.options()) + 0.5, b = torch::randn({5}, x.options());
    auto rm1 = torch::zeros({5}, x.options()), rv1 = torch::ones({5}, x.options());
    auto rm2 = rm1.clone(), rv2 = rv1.clone();
    auto x2 = x.detach().clone().requires_grad_();
    auto y1 = functional::batch_norm_relu(x, w, b, rm1, rv1, true, 0.1, 1e-5, bias);
    auto y2 =
        functional::batch_norm_relu(x2 + bias.view({1, 5, 1}), w, b, rm2, rv2, true, 0.1, 1e-5);
    EXPECT_TRUE(torch::allclose(y1, y2, 1e-5, 1e-5));
    EXPECT_TRUE(torch::allclose(rm1, rm2, 1e-6, 1e-6));
    EXPECT_TRUE(torch::allclose(rv1, rv2, 1e-5, 1e-5));
    auto g = torch::randn_like(y1);
    (y1 * g).sum().backward();
    (y2 * g).sum().backward();
    EXPECT_TRUE(torch::allclose(x.grad(), x2.grad(), 1e-5, 1e-5));
  }
}

TEST_F(BatchNormReluTest, EncoderConvBiasGetsNoGradientButServesEvalMode) {
  ConvEncoder enc(ConvEncoderOptions().channels(8).norm("batch"));
  auto x = torch::randn({2, 1, 4000});
  enc->forward(x).sum().backward();
  auto params = enc->named_parameters();
  EXPECT_FALSE(params["convs.0.bias"].grad().defined());
  EXPECT_TRUE(params["convs.0.weight"].grad().defined());
  // Eval mode adds the bias and subtracts the running mean, which holds it: shifting a conv bias
  // after training (running mean unchanged) shifts the eval output.
  enc->eval();
  auto before = enc->forward(x);
  {
    torch::NoGradGuard no_grad;
    params["convs.4.bias"].add_(1.0);
  }
  EXPECT_FALSE(torch::allclose(enc->forward(x), before));
}

TEST_F(BatchNormReluTest, BadShapesThrow) {
  EXPECT_THROW(functional::batch_norm_relu(torch::randn({4}), {}, {}, {}, {}, true, 0.1, 1e-5),
               c10::Error);
  EXPECT_THROW(functional::batch_norm_relu(torch::randn({2, 3, 4}), torch::ones({4}), {}, {}, {},
                                           true, 0.1, 1e-5),
               c10::Error);
  EXPECT_THROW(
      functional::batch_norm_relu(torch::randn({2, 3, 4}), {}, {}, {}, {}, false, 0.1, 1e-5),
      c10::Error);
}

}  // namespace
}  // namespace contra::nn
