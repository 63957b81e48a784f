#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/config.h"
#include "contra/core/error.h"
#include "contra/nn/image_encoder.h"
#include "contra/nn/projection_head.h"
#include "contra/nn/resnet.h"
#include "contra/nn/small_cnn.h"
#include "tests/support/support.h"

namespace contra::nn {
namespace {

using contra::testing::SeededTest;
class ImageEncodersTest : public SeededTest {};

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

// The message of the ConfigError `make` throws (empty when it throws nothing or something else).
template <class F>
std::string config_error_message(F make) {
  try {
    make();
  } catch (const ConfigError& e) {
    return e.what();
  } catch (...) {
  }
  return "";
}

TEST_F(ImageEncodersTest, SmallCnnShapes) {
  SmallCnn mnist(SmallCnnOptions().in_channels(1).width(8));
  EXPECT_EQ(mnist->output_size(), 32);
  EXPECT_EQ(mnist->forward(torch::randn({3, 1, 28, 28})).sizes(), (std::vector<int64_t>{3, 32}));
  EXPECT_EQ(mnist->forward(torch::randn({2, 1, 8, 8})).sizes(), (std::vector<int64_t>{2, 32}));
  EXPECT_EQ(mnist->forward(torch::randn({2, 1, 9, 13})).sizes(), (std::vector<int64_t>{2, 32}));
  SmallCnn rgb(SmallCnnOptions().in_channels(3).width(8));
  auto h = rgb->forward(torch::randn({2, 3, 32, 32}));
  EXPECT_EQ(h.sizes(), (std::vector<int64_t>{2, 32}));
  EXPECT_GE(h.min().item<double>(), 0.0);  // average of ReLU outputs
  EXPECT_THROW(rgb->forward(torch::randn({2, 1, 32, 32})), c10::Error);
  EXPECT_THROW(rgb->forward(torch::randn({2, 3, 3, 32})), c10::Error);
}

TEST_F(ImageEncodersTest, SmallCnnParameterCount) {
  // 9·C·w (conv1) + 18·w² (conv2) + 72·w² (conv3) + 2·(w + 2w + 4w) (BN γ, β); convs have no bias.
  SmallCnn net(SmallCnnOptions().in_channels(1).width(32));
  EXPECT_EQ(count_parameters(*net), 9 * 32 + 90 * 32 * 32 + 14 * 32);
  EXPECT_EQ(count_parameters(*net), 92896);
}

TEST_F(ImageEncodersTest, ResNet18Shapes) {
  ResNet18 cifar(ResNet18Options().width(8));
  EXPECT_EQ(cifar->output_size(), 64);
  EXPECT_EQ(cifar->forward(torch::randn({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 64}));
  ResNet18 mnist(ResNet18Options().in_channels(1).width(8));
  EXPECT_EQ(mnist->forward(torch::randn({2, 1, 28, 28})).sizes(), (std::vector<int64_t>{2, 64}));
  EXPECT_THROW(mnist->forward(torch::randn({2, 3, 28, 28})), c10::Error);
  EXPECT_THROW(mnist->forward(torch::randn({1, 28, 28})), c10::Error);
}

TEST_F(ImageEncodersTest, ResNet18ParameterCountMatchesTorchvisionCifarVariant) {
  // torchvision.models.resnet18() has 11,689,512 parameters with the ImageNet stem (7×7×3×64 conv,
  // no bias: 9,408) and the 1000-class fc (512·1000 + 1000 = 513,000). The CIFAR variant swaps the
  // stem for a 3×3×3×64 conv (1,728) and drops the fc (and the parameter-free max-pool):
  //   11,689,512 − 9,408 + 1,728 − 513,000 = 11,168,832.
  // BatchNorm running statistics are buffers, not parameters, in both.
  ResNet18 net(ResNet18Options().in_channels(3).width(64));
  EXPECT_EQ(count_parameters(*net), 11168832);
  // General width w, C input channels: 9·C·w + 2724·w² + 150·w (docs/images.md).
  ResNet18 small(ResNet18Options().in_channels(3).width(8));
  EXPECT_EQ(count_parameters(*small), 9 * 3 * 8 + 2724 * 8 * 8 + 150 * 8);
  ResNet18 grey(ResNet18Options().in_channels(1).width(8));
  EXPECT_EQ(count_parameters(*grey), 9 * 1 * 8 + 2724 * 8 * 8 + 150 * 8);
  // torchvision's names, so converted checkpoints load by name.
  auto params = net->named_parameters();
  for (const char* name : {"conv1.weight", "bn1.weight", "layer1.0.conv1.weight",
                           "layer2.0.downsample.0.weight", "layer4.1.bn2.bias"}) {
    EXPECT_TRUE(params.contains(name)) << name;
  }
  EXPECT_FALSE(params.contains("layer1.0.downsample.0.weight"));
}

TEST_F(ImageEncodersTest, ZeroInitResidualZeroesLastBnGammaOfEveryBlock) {
  ResNet18 zero(ResNet18Options().width(8).zero_init_residual(true));
  ResNet18 plain(ResNet18Options().width(8));
  int blocks = 0;
  for (const auto& item : zero->named_parameters()) {
    const auto& name = item.key();
    const std::string suffix = ".bn2.weight";
    const bool last_gamma = name.size() > suffix.size() &&
                            name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    if (last_gamma) {
      ++blocks;
      EXPECT_EQ(item.value().abs().max().item<double>(), 0.0) << name;
      EXPECT_EQ(plain->named_parameters()[name].min().item<double>(), 1.0) << name;
    } else if (name.find("bn") != std::string::npos && name.find("weight") != std::string::npos) {
      EXPECT_EQ(item.value().min().item<double>(), 1.0) << name;  // other BN γ stay 1
    }
  }
  EXPECT_EQ(blocks, 8);
  // Every block starts as ReLU(shortcut(x)): the first stage is the identity on its (≥ 0) input.
  auto x = torch::rand({2, 8, 8, 8});
  zero->eval();
  auto first_stage = zero->named_children()["layer1"]->as<torch::nn::SequentialImpl>();
  EXPECT_TRUE(torch::allclose(first_stage->forward(x), x));
}

TEST_F(ImageEncodersTest, GradientsReachTheFirstConv) {
  for (bool zero_init : {false, true}) {
    ResNet18 net(ResNet18Options().width(8).zero_init_residual(zero_init));
    net->forward(torch::randn({2, 3, 16, 16})).pow(2).sum().backward();
    auto grad = net->named_parameters()["conv1.weight"].grad();
    ASSERT_TRUE(grad.defined()) << zero_init;
    EXPECT_GT(grad.abs().sum().item<double>(), 0.0) << zero_init;
  }
  SmallCnn cnn(SmallCnnOptions().width(8));
  cnn->forward(torch::randn({2, 1, 28, 28})).pow(2).sum().backward();
  auto grad = cnn->named_parameters()["conv1.weight"].grad();
  ASSERT_TRUE(grad.defined());
  EXPECT_GT(grad.abs().sum().item<double>(), 0.0);
}

TEST_F(ImageEncodersTest, TrainAndEvalBatchNormDiffer) {
  ImageEncoderConfig small_cnn;
  small_cnn.width = 8;
  ImageEncoderConfig resnet;
  resnet.type = "resnet18";
  resnet.width = 8;
  for (const auto& config : {small_cnn, resnet}) {
    auto encoder = make_image_encoder(config);
    auto module = encoder.ptr();
    auto x = torch::randn({4, config.in_channels, 16, 16});
    auto mean_before = module->named_buffers()["bn1.running_mean"].clone();
    // Training: batch statistics, so a sample's features depend on the rest of the batch, and
    // the running statistics move.
    module->train();
    auto train_out = encoder.forward(x);
    auto train_alone = encoder.forward(x.slice(0, 0, 2));
    EXPECT_FALSE(torch::allclose(train_out.slice(0, 0, 2), train_alone, 1e-4, 1e-5)) << config.type;
    EXPECT_FALSE(torch::equal(module->named_buffers()["bn1.running_mean"], mean_before))
        << config.type;
    // Evaluation: running statistics, per-sample outputs, buffers frozen.
    module->eval();
    auto mean_eval = module->named_buffers()["bn1.running_mean"].clone();
    auto eval_out = encoder.forward(x);
    auto eval_alone = encoder.forward(x.slice(0, 0, 2));
    EXPECT_TRUE(torch::allclose(eval_out.slice(0, 0, 2), eval_alone, 1e-4, 1e-5)) << config.type;
    EXPECT_TRUE(torch::equal(module->named_buffers()["bn1.running_mean"], mean_eval))
        << config.type;
    EXPECT_FALSE(torch::allclose(eval_out, train_out, 1e-4, 1e-5)) << config.type;
  }
}

TEST_F(ImageEncodersTest, InvalidOptionsThrowConfigErrorNamingTheOption) {
  EXPECT_NE(config_error_message([] { SmallCnn(SmallCnnOptions().width(0)); }).find("width"),
            std::string::npos);
  EXPECT_NE(
      config_error_message([] { SmallCnn(SmallCnnOptions().in_channels(-1)); }).find("in_channels"),
      std::string::npos);
  EXPECT_NE(config_error_message([] { ResNet18(ResNet18Options().width(-2)); }).find("width"),
            std::string::npos);
  EXPECT_NE(
      config_error_message([] { ResNet18(ResNet18Options().in_channels(0)); }).find("in_channels"),
      std::string::npos);
  EXPECT_NE(config_error_message([] {
              ProjectionHead(ProjectionHeadOptions(8, 8, 4).layers(0));
            }).find("layers"),
            std::string::npos);
  EXPECT_NE(config_error_message([] { ProjectionHead(8, 0, 4); }).find("hidden"),
            std::string::npos);
  EXPECT_NE(config_error_message([] { ProjectionHead(8, 8, 0); }).find("out"), std::string::npos);

  ImageEncoderConfig config;
  config.type = "vgg";
  const auto type_message = config_error_message([&] { make_image_encoder(config); });
  EXPECT_NE(type_message.find("type"), std::string::npos) << type_message;
  EXPECT_NE(type_message.find("small_cnn"), std::string::npos) << type_message;
  EXPECT_NE(type_message.find("resnet18"), std::string::npos) << type_message;
  EXPECT_NE(type_message.find("'vgg'"), std::string::npos) << type_message;
  config = {};
  config.width = -1;
  EXPECT_NE(config_error_message([&] { config.validate(); }).find("width"), std::string::npos);
  config = {};
  config.in_channels = 0;
  EXPECT_NE(config_error_message([&] { config.validate(); }).find("in_channels"),
            std::string::npos);
}

TEST_F(ImageEncodersTest, ConfigReadsFromYamlAndRejectsUnknownKeys) {
  auto tree = ConfigTree::from_string(
      "encoder: {type: resnet18, in_channels: 3, width: 8, zero_init_residual: true}\n");
  auto config = tree.get<ImageEncoderConfig>("encoder");
  EXPECT_EQ(config.type, "resnet18");
  EXPECT_EQ(config.in_channels, 3);
  EXPECT_EQ(config.width, 8);
  EXPECT_TRUE(config.zero_init_residual);
  EXPECT_EQ(config.output_size(), 64);
  EXPECT_THROW(ConfigTree::from_string("encoder: {type: resnet18, depth: 50}\n")
                   .get<ImageEncoderConfig>("encoder"),
               ConfigError);
  const auto message = config_error_message([] {
    ConfigTree::from_string("encoder: {type: resnet50}\n").get<ImageEncoderConfig>("encoder");
  });
  EXPECT_NE(message.find("encoder.type"), std::string::npos) << message;
}

TEST_F(ImageEncodersTest, FactoryOutputSizeMatchesForward) {
  ImageEncoderConfig config;
  EXPECT_EQ(config.resolved_width(), 32);
  EXPECT_EQ(config.output_size(), 128);
  config.type = "resnet18";
  EXPECT_EQ(config.resolved_width(), 64);
  EXPECT_EQ(config.output_size(), 512);
  for (const char* type : {"small_cnn", "resnet18"}) {
    for (int64_t channels : {1, 3}) {
      config.type = type;
      config.in_channels = channels;
      config.width = 4;
      auto encoder = make_image_encoder(config);
      EXPECT_EQ(encoder.forward(torch::randn({2, channels, 28, 28})).sizes(),
                (std::vector<int64_t>{2, config.output_size()}))
          << type << " " << channels;
    }
  }
}

TEST_F(ImageEncodersTest, ProjectionHeadShapes) {
  auto h = torch::randn({4, 32});
  ProjectionHead two(ProjectionHeadOptions(32, 16, 8));
  EXPECT_EQ(two->forward(h).sizes(), (std::vector<int64_t>{4, 8}));
  ProjectionHead three(ProjectionHeadOptions(32, 16, 8).layers(3));
  EXPECT_EQ(three->forward(h).sizes(), (std::vector<int64_t>{4, 8}));
  ProjectionHead one(ProjectionHeadOptions(32, 16, 8).layers(1));
  EXPECT_EQ(one->forward(h).sizes(), (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(count_parameters(*one), 32 * 8 + 8);
  // Linear(no bias) + BN(γ, β) per hidden layer, Linear with bias last.
  EXPECT_EQ(count_parameters(*two), 32 * 16 + 2 * 16 + 16 * 8 + 8);
  EXPECT_EQ(count_parameters(*three), 32 * 16 + 2 * 16 + 16 * 16 + 2 * 16 + 16 * 8 + 8);
  EXPECT_EQ(count_parameters(*ProjectionHead(512, 512, 128)), 328832);  // SimCLR's CIFAR head
  ProjectionHead no_bn(ProjectionHeadOptions(32, 16, 8).batch_norm(false));
  EXPECT_EQ(count_parameters(*no_bn), 32 * 16 + 16 + 16 * 8 + 8);
  EXPECT_THROW(two->forward(torch::randn({4, 31})), c10::Error);
}

TEST_F(ImageEncodersTest, ProjectionHeadLastBatchNormStandardisesFeatures) {
  ProjectionHead head(ProjectionHeadOptions(32, 16, 8).last_batch_norm(true));
  EXPECT_EQ(count_parameters(*head), 32 * 16 + 2 * 16 + 16 * 8);  // no bias, no affine at the end
  auto z = head->forward(torch::randn({64, 32}) * 3 + 1);         // training mode
  EXPECT_LT(z.mean(0).abs().max().item<double>(), 1e-4);
  auto variance = (z - z.mean(0)).pow(2).mean(0);  // biased, as BatchNorm normalises
  EXPECT_LT((variance - 1).abs().max().item<double>(), 1e-2);
  z.sum().backward();
  for (const auto& p : head->parameters()) EXPECT_TRUE(p.grad().defined());
}

TEST_F(ImageEncodersTest, DeterministicForASeed) {
  for (const char* type : {"small_cnn", "resnet18"}) {
    ImageEncoderConfig config;
    config.type = type;
    config.in_channels = 3;
    config.width = 8;
    auto run = [&] {
      torch::manual_seed(7);
      auto encoder = make_image_encoder(config);
      ProjectionHead head(ProjectionHeadOptions(config.output_size(), 16, 8));
      return head->forward(encoder.forward(torch::randn({2, 3, 32, 32})));
    };
    auto a = run(), b = run();
    EXPECT_TRUE(torch::equal(a, b)) << type;
  }
}

}  // namespace
}  // namespace contra::nn
