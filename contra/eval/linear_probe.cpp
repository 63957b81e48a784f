#include "contra/eval/linear_probe.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "contra/core/error.h"

namespace contra::eval {

namespace {

void check_set(const torch::Tensor& x, const torch::Tensor& y, const char* name) {
  check<DataError>(x.defined() && x.dim() == 2 && x.size(0) > 0,
                   "linear_probe: {} features must be a non-empty (N, D) tensor", name);
  check<DataError>(y.defined() && y.dim() == 1 && y.size(0) == x.size(0),
                   "linear_probe: {} labels must be (N) with N = {} (got {} labels)", name,
                   x.size(0), y.defined() ? y.numel() : 0);
  check<DataError>(torch::isfinite(x).all().item<bool>(),
                   "linear_probe: {} features contain NaN or Inf", name);
  check<DataError>(y.min().item<int64_t>() >= 0, "linear_probe: {} labels must be >= 0 (got {})",
                   name, y.min().item<int64_t>());
}

/// Argmax accuracy, evaluated in chunks so memory stays bounded for millions of frames.
double accuracy(const std::function<torch::Tensor(const torch::Tensor&)>& logits,
                const torch::Tensor& x, const torch::Tensor& y) {
  torch::NoGradGuard no_grad;
  int64_t correct = 0;
  constexpr int64_t kChunk = 65536;
  for (int64_t i = 0; i < x.size(0); i += kChunk) {
    const int64_t n = std::min(kChunk, x.size(0) - i);
    correct += (logits(x.narrow(0, i, n)).argmax(1) == y.narrow(0, i, n)).sum().item<int64_t>();
  }
  return static_cast<double>(correct) / static_cast<double>(x.size(0));
}

}  // namespace

ProbeResult linear_probe(const torch::Tensor& train_x_in, const torch::Tensor& train_y_in,
                         const torch::Tensor& test_x_in, const torch::Tensor& test_y_in,
                         const LinearProbeOptions& options) {
  check<ConfigError>(options.epochs() >= 1, "linear_probe: epochs must be >= 1 (got {})",
                     options.epochs());
  check<ConfigError>(options.lr() > 0, "linear_probe: lr must be > 0 (got {})", options.lr());
  check<ConfigError>(options.weight_decay() >= 0,
                     "linear_probe: weight_decay must be >= 0 (got {})", options.weight_decay());
  check<ConfigError>(options.batch_size() >= 0, "linear_probe: batch_size must be >= 0 (got {})",
                     options.batch_size());
  check<ConfigError>(options.hidden() >= 0, "linear_probe: hidden must be >= 0 (got {})",
                     options.hidden());
  check<ConfigError>(options.optimizer() == "adam" || options.optimizer() == "lbfgs",
                     "linear_probe: optimizer must be adam or lbfgs (got '{}')",
                     options.optimizer());
  check_set(train_x_in, train_y_in, "train");
  check_set(test_x_in, test_y_in, "test");
  check<DataError>(train_x_in.size(1) == test_x_in.size(1),
                   "linear_probe: train and test feature sizes differ ({} vs {})",
                   train_x_in.size(1), test_x_in.size(1));

  const auto device = options.device();
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(device);
  auto train_x = train_x_in.to(f32);
  auto test_x = test_x_in.to(f32);
  auto train_y = train_y_in.to(torch::TensorOptions().dtype(torch::kLong).device(device));
  auto test_y = test_y_in.to(torch::TensorOptions().dtype(torch::kLong).device(device));

  ProbeResult result;
  result.dim = train_x.size(1);
  result.train_size = train_x.size(0);
  result.test_size = test_x.size(0);
  result.classes = std::max(train_y.max().item<int64_t>(), test_y.max().item<int64_t>()) + 1;
  {
    auto counts = torch::bincount(train_y, {}, result.classes);
    result.chance_accuracy = (test_y == counts.argmax()).to(torch::kDouble).mean().item<double>();
  }

  // Standardise with the training statistics (constant features stay 0).
  auto mean = train_x.mean(0, true);
  auto stdev = train_x.std(0, /*unbiased=*/false, true).clamp_min(1e-8);
  train_x = (train_x - mean) / stdev;
  test_x = (test_x - mean) / stdev;

  // Parameters as plain tensors so initialisation and order depend on `seed` only.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed());
  const int64_t D = result.dim, K = result.classes, H = options.hidden();
  std::vector<torch::Tensor> weights, params;
  torch::Tensor w1, b1, w2, b2;
  if (H > 0) {
    // Kaiming-uniform-like init for the hidden layer, zero output layer.
    const double bound = 1.0 / std::sqrt(static_cast<double>(D));
    w1 = (torch::rand({D, H}, gen, torch::kFloat) * 2 - 1).mul_(bound).to(device).requires_grad_();
    b1 = torch::zeros({H}, f32).requires_grad_();
    w2 = torch::zeros({H, K}, f32).requires_grad_();
    weights = {w1, w2};
  } else {
    w2 = torch::zeros({D, K}, f32).requires_grad_();  // convex problem: zero start is fine
    weights = {w2};
  }
  b2 = torch::zeros({K}, f32).requires_grad_();
  params = H > 0 ? std::vector<torch::Tensor>{w1, b1, w2, b2} : std::vector<torch::Tensor>{w2, b2};

  auto logits = [&](const torch::Tensor& x) {
    auto h = H > 0 ? torch::relu(torch::addmm(b1, x, w1)) : x;
    return torch::addmm(b2, h, w2);
  };
  auto objective = [&](const torch::Tensor& x, const torch::Tensor& y) {
    auto loss = torch::cross_entropy_loss(logits(x), y);
    if (options.weight_decay() > 0) {
      for (const auto& w : weights) loss = loss + 0.5 * options.weight_decay() * w.pow(2).sum();
    }
    return loss;
  };

  const int64_t N = train_x.size(0);
  if (options.optimizer() == "lbfgs") {
    torch::optim::LBFGS lbfgs(params, torch::optim::LBFGSOptions(options.lr())
                                          .max_iter(options.epochs())
                                          .history_size(20)
                                          .line_search_fn("strong_wolfe"));
    lbfgs.step([&] {
      lbfgs.zero_grad();
      auto loss = objective(train_x, train_y);
      loss.backward();
      return loss;
    });
  } else {
    torch::optim::Adam adam(params, torch::optim::AdamOptions(options.lr()));
    const int64_t batch = options.batch_size() == 0 ? N : std::min(options.batch_size(), N);
    for (int64_t epoch = 0; epoch < options.epochs(); ++epoch) {
      torch::Tensor order;
      if (batch < N) order = torch::randperm(N, gen, torch::kLong).to(device);
      for (int64_t i = 0; i < N; i += batch) {
        const int64_t n = std::min(batch, N - i);
        torch::Tensor x = train_x, y = train_y;
        if (batch < N) {
          auto idx = order.narrow(0, i, n);
          x = train_x.index_select(0, idx);
          y = train_y.index_select(0, idx);
        }
        adam.zero_grad();
        objective(x, y).backward();
        adam.step();
      }
    }
  }
  {
    torch::NoGradGuard no_grad;
    double loss = 0;
    constexpr int64_t kChunk = 65536;
    for (int64_t i = 0; i < N; i += kChunk) {
      const int64_t n = std::min(kChunk, N - i);
      loss += torch::cross_entropy_loss(logits(train_x.narrow(0, i, n)), train_y.narrow(0, i, n),
                                        {}, torch::Reduction::Sum)
                  .item<double>();
    }
    result.train_loss = loss / static_cast<double>(N);
  }
  result.train_accuracy = accuracy(logits, train_x, train_y);
  result.test_accuracy = accuracy(logits, test_x, test_y);
  return result;
}

}  // namespace contra::eval
