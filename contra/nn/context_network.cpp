#include "contra/nn/context_network.h"

#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/nn/recurrent.h"

namespace contra::nn {

namespace functional {
torch::Tensor sinusoidal_positions(int64_t length, int64_t dim,
                                   const torch::TensorOptions& options) {
  auto f32 = options.dtype(torch::kFloat32);
  auto position = torch::arange(length, f32).unsqueeze(1);  // (T, 1)
  auto i = torch::arange(0, dim, 2, f32);                   // (⌈D/2⌉)
  auto frequency = torch::exp(i * (-std::log(10000.0) / static_cast<double>(dim)));
  auto angle = position * frequency;  // (T, ⌈D/2⌉)
  auto pe = torch::zeros({length, dim}, f32);
  pe.index_put_({torch::indexing::Slice(), torch::indexing::Slice(0, dim, 2)}, torch::sin(angle));
  pe.index_put_({torch::indexing::Slice(), torch::indexing::Slice(1, dim, 2)},
                torch::cos(angle).narrow(1, 0, dim / 2));
  return pe.to(options.dtype());
}

torch::Tensor causal_mask(int64_t length, const torch::TensorOptions& options) {
  return torch::full({length, length}, -std::numeric_limits<float>::infinity(), options).triu(1);
}
}  // namespace functional

ContextNetworkImpl::ContextNetworkImpl(ContextNetworkOptions options_)
    : options(std::move(options_)) {
  const auto& type = options.type();
  check<ConfigError>(type == "gru" || type == "lstm" || type == "transformer",
                     "context_network: type must be gru, lstm or transformer (got '{}')", type);
  check<ConfigError>(options.input_size() > 0 && options.hidden_size() > 0,
                     "context_network: input_size and hidden_size must be > 0 (got {}, {})",
                     options.input_size(), options.hidden_size());
  check<ConfigError>(options.layers() >= 1, "context_network: layers must be >= 1 (got {})",
                     options.layers());
  if (type == "transformer") {
    check<ConfigError>(options.heads() >= 1 && options.hidden_size() % options.heads() == 0,
                       "context_network: heads must divide hidden_size (got heads {}, hidden {})",
                       options.heads(), options.hidden_size());
    check<ConfigError>(options.feedforward() > 0,
                       "context_network: feedforward must be > 0 (got {})", options.feedforward());
    check<ConfigError>(options.dropout() >= 0 && options.dropout() < 1,
                       "context_network: dropout must be in [0, 1) (got {})", options.dropout());
  }
  reset();
}

void ContextNetworkImpl::reset() {
  const auto& type = options.type();
  if (type == "gru") {
    gru_ = register_module(
        "gru", torch::nn::GRU(torch::nn::GRUOptions(options.input_size(), options.hidden_size())
                                  .num_layers(options.layers())
                                  .batch_first(true)));
  } else if (type == "lstm") {
    lstm_ = register_module(
        "lstm", torch::nn::LSTM(torch::nn::LSTMOptions(options.input_size(), options.hidden_size())
                                    .num_layers(options.layers())
                                    .batch_first(true)));
  } else {
    input_ =
        register_module("input", torch::nn::Linear(options.input_size(), options.hidden_size()));
    blocks_ = register_module("blocks", torch::nn::ModuleList());
    for (int64_t i = 0; i < options.layers(); ++i) {
      blocks_->push_back(torch::nn::TransformerEncoderLayer(
          torch::nn::TransformerEncoderLayerOptions(options.hidden_size(), options.heads())
              .dim_feedforward(options.feedforward())
              .dropout(options.dropout())));
    }
  }
}

torch::Tensor ContextNetworkImpl::forward(const torch::Tensor& z) {
  TORCH_CHECK(z.dim() == 3 && z.size(2) == options.input_size(),
              "context_network: input must be (B, T, ", options.input_size(), "), got ", z.sizes());
  if ((gru_ || lstm_) && !z.device().is_cpu()) {
    return gru_ ? std::get<0>(gru_->forward(z)) : std::get<0>(lstm_->forward(z));  // cuDNN
  }
  if (gru_ || lstm_) {
    // Layer by layer through the fused kernels (recurrent.h); parameters as torch.nn.GRU/LSTM
    // name them, so checkpoints and exports are unchanged.
    auto params = gru_ ? gru_->named_parameters(false) : lstm_->named_parameters(false);
    auto get = [&](const std::string& name) {
      auto* p = params.find(name);
      return p ? *p : torch::Tensor();
    };
    torch::Tensor x = z;
    for (int64_t l = 0; l < options.layers(); ++l) {
      const std::string s = std::to_string(l);
      auto w_ih = get("weight_ih_l" + s), w_hh = get("weight_hh_l" + s),
           b_ih = get("bias_ih_l" + s), b_hh = get("bias_hh_l" + s);
      x = gru_ ? functional::gru_sequence(x, w_ih, w_hh, b_ih, b_hh)
               : functional::lstm_sequence(x, w_ih, w_hh, b_ih, b_hh);
    }
    return x;
  }
  const int64_t length = z.size(1);
  auto x = input_->forward(z) +
           functional::sinusoidal_positions(length, options.hidden_size(), z.options());
  auto mask = functional::causal_mask(length, z.options());
  x = x.transpose(0, 1);  // (T, B, H): the layers are sequence-first
  for (const auto& block : *blocks_) {
    x = block->as<torch::nn::TransformerEncoderLayer>()->forward(x, mask);
  }
  return x.transpose(0, 1);
}

}  // namespace contra::nn
