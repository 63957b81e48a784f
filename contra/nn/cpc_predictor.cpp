#include "contra/nn/cpc_predictor.h"

#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/core/runtime.h"
#include "contra/nn/context_network.h"

namespace contra::nn {

CpcPredictorImpl::CpcPredictorImpl(CpcPredictorOptions options_) : options(std::move(options_)) {
  check<ConfigError>(options.context_size() > 0 && options.encoder_size() > 0,
                     "cpc_predictor: context_size and encoder_size must be > 0 (got {}, {})",
                     options.context_size(), options.encoder_size());
  check<ConfigError>(options.steps() >= 1, "cpc_predictor: steps must be >= 1 (got {})",
                     options.steps());
  check<ConfigError>(options.head() == "linear" || options.head() == "transformer",
                     "cpc_predictor: head must be linear or transformer (got '{}')",
                     options.head());
  if (options.head() == "transformer") {
    check<ConfigError>(options.heads() >= 1 && options.context_size() % options.heads() == 0,
                       "cpc_predictor: heads must divide context_size (got heads {}, size {})",
                       options.heads(), options.context_size());
  }
  check<ConfigError>(options.precision() == "float32" || options.precision() == "bfloat16" ||
                         options.precision() == "auto",
                     "cpc_predictor: precision must be float32, bfloat16 or auto (got '{}')",
                     options.precision());
  reset();
}

void CpcPredictorImpl::reset() {
  if (options.head() == "transformer") {
    shared_ = register_module(
        "shared", torch::nn::TransformerEncoderLayer(torch::nn::TransformerEncoderLayerOptions(
                                                         options.context_size(), options.heads())
                                                         .dim_feedforward(options.feedforward())
                                                         .dropout(0.0)));
  }
  linear_ = register_module(
      "linear", torch::nn::Linear(torch::nn::LinearOptions(options.context_size(),
                                                           options.steps() * options.encoder_size())
                                      .bias(options.bias())));
}

torch::Tensor CpcPredictorImpl::forward(const torch::Tensor& context) {
  TORCH_CHECK(context.dim() == 3 && context.size(2) == options.context_size(),
              "cpc_predictor: input must be (B, T, ", options.context_size(), "), got ",
              context.sizes());
  torch::Tensor h = context;
  if (shared_) {
    auto mask = functional::causal_mask(context.size(1), context.options());
    h = shared_->forward(context.transpose(0, 1), mask).transpose(0, 1);
  }
  torch::Tensor out;
  if (resolve_bf16(options.precision(), context.device())) {
    auto bf16 = [](const torch::Tensor& t) { return t.defined() ? t.to(torch::kBFloat16) : t; };
    out = torch::linear(bf16(h), bf16(linear_->weight), bf16(linear_->bias));
  } else {
    out = linear_->forward(h);
  }
  return out.reshape({context.size(0), context.size(1), options.steps(), options.encoder_size()});
}

}  // namespace contra::nn
