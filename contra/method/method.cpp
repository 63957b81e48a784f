#include "contra/method/method.h"

#include <torch/torch.h>

namespace contra::method {

Batch Batch::to(const torch::Device& device) const {
  auto move = [&](const torch::Tensor& t) {
    return t.defined() ? t.to(device, /*non_blocking=*/t.is_pinned()) : t;
  };
  Batch out;
  out.input = move(input);
  for (const auto& v : views) out.views.push_back(move(v));
  out.labels = move(labels);
  out.index = move(index);
  for (const auto& [k, v] : extra) out.extra[k] = move(v);
  return out;
}

}  // namespace contra::method
