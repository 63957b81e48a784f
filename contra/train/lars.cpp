#include "contra/train/lars.h"

#include <sstream>
#include <string>
#include <type_traits>

#include <ATen/core/grad_mode.h>
#include <torch/torch.h>

#include "contra/core/error.h"

namespace contra::train {

namespace {

// The key of a parameter in `Optimizer::state()`: its TensorImpl address, as the text LibTorch 1.x
// writes (`c10::guts::to_string(impl)`, i.e. `ostream << pointer`) or, in LibTorch 2.x, the
// pointer itself. Must match what torch's serialize helpers use when they restore the state.
template <class Key>
Key state_key(const torch::Tensor& param) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream text;
    text << static_cast<const void*>(param.unsafeGetTensorImpl());
    return text.str();
  } else {
    return static_cast<Key>(param.unsafeGetTensorImpl());
  }
}

}  // namespace

LarsOptions::LarsOptions(double lr) : lr_(lr) {}

void LarsOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eta);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exclude_bias_and_norm);
}

void LarsOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, momentum);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, eta);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, exclude_bias_and_norm);
}

double LarsOptions::get_lr() const { return lr(); }

void LarsOptions::set_lr(const double lr) { this->lr(lr); }

void LarsParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum_buffer);
}

void LarsParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, momentum_buffer);
}

Lars::Lars(std::vector<torch::optim::OptimizerParamGroup> param_groups, LarsOptions defaults)
    : Optimizer(std::move(param_groups), std::make_unique<LarsOptions>(defaults)) {
  check<ConfigError>(defaults.lr() >= 0, "lars: lr must be >= 0 (got {})", defaults.lr());
  check<ConfigError>(defaults.momentum() >= 0, "lars: momentum must be >= 0 (got {})",
                     defaults.momentum());
  check<ConfigError>(defaults.weight_decay() >= 0, "lars: weight_decay must be >= 0 (got {})",
                     defaults.weight_decay());
  check<ConfigError>(defaults.eta() > 0, "lars: eta must be > 0 (got {})", defaults.eta());
}

Lars::Lars(std::vector<torch::Tensor> params, LarsOptions defaults)
    : Lars(std::vector<torch::optim::OptimizerParamGroup>{torch::optim::OptimizerParamGroup(
               std::move(params))},
           std::move(defaults)) {}

torch::Tensor Lars::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  using Key = typename std::decay_t<decltype(state_)>::key_type;
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const LarsOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      torch::Tensor g = p.grad();
      torch::Tensor update;  // lr·r·g
      if (o.exclude_bias_and_norm() && p.dim() <= 1) {
        update = g.mul(o.lr());
      } else {
        if (o.weight_decay() != 0) g = g.add(p, o.weight_decay());
        // Norms and ratio stay tensors (no device sync); both branches of `where` are computed,
        // the selected one is finite.
        torch::Tensor p_norm = p.norm();
        torch::Tensor g_norm = g.norm();
        torch::Tensor ratio =
            torch::where(p_norm.gt(0).logical_and(g_norm.gt(0)), p_norm.mul(o.eta()).div(g_norm),
                         torch::ones_like(p_norm));
        update = g.mul(ratio.mul(o.lr()));
      }
      const Key key = state_key<Key>(p);
      auto it = state_.find(key);
      torch::Tensor buffer;
      if (it == state_.end()) {
        buffer = update.clone();  // μ·0 + update
        auto state = std::make_unique<LarsParamState>();
        state->momentum_buffer(buffer);
        state_[key] = std::move(state);
      } else {
        auto& state = static_cast<LarsParamState&>(*it->second);
        buffer = state.momentum_buffer();
        if (buffer.device() != p.device() || buffer.dtype() != p.dtype()) {
          buffer = buffer.to(p.device(), p.scalar_type());  // e.g. restored on another device
          state.momentum_buffer(buffer);
        }
        buffer.mul_(o.momentum()).add_(update);
      }
      p.sub_(buffer);
    }
  }
  return loss;
}

torch::Tensor Lars::momentum_buffer(const torch::Tensor& param) const {
  using Key = typename std::decay_t<decltype(state_)>::key_type;
  auto it = state_.find(state_key<Key>(param));
  if (it == state_.end()) return {};
  return static_cast<const LarsParamState&>(*it->second).momentum_buffer();
}

void Lars::save(torch::serialize::OutputArchive& archive) const { serialize(*this, archive); }

void Lars::load(torch::serialize::InputArchive& archive) { serialize(*this, archive); }

}  // namespace contra::train
